"""The hybrid neural iterative decoder (paper, section 2).

* `cells`: the state functions (LSTM, GRU, Delta-RNN, Elman, MLP) with pure
  step functions;
* `decoder`: `HybridDecoder`, the sibling neural estimator, export and load;
* `losses`: the training objective, eqs. 17-19.

Import the modules themselves; this package imports nothing.
"""
