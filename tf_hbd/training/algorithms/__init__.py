"""Learning algorithms for the HBD decoder: BPTT, SAB, RTRL, UORO, SnAp-1.

Every algorithm implements `tf_hbd.training.algorithms.base.Algorithm` and is
registered in `ALGORITHMS` (name -> class) by its module:

* ``bptt`` (`bptt.BPTT`): unrolled episode, one tape (paper, section 2);
* ``sab`` (`sab.SAB`): sparse attentive backtracking (Ke et al., 2018);
* ``rtrl`` (`rtrl.RTRL`): real-time recurrent learning (Williams & Zipser
  1989; paper eqs. 12-14);
* ``uoro`` (`uoro.UORO`): unbiased online recurrent optimisation (Tallec &
  Ollivier 2017; paper eqs. 15-16);
* ``snap1`` (`snap.SnAp1`): the sparse one-step approximation of RTRL
  (Menick et al., ICLR 2021).

``make_algorithm(name, decoder, **options)`` builds one;
``options_from_flags(name, flag_values)`` reads its options from flags.
"""

from tf_hbd.training.algorithms.base import ALGORITHMS
from tf_hbd.training.algorithms.base import Algorithm
from tf_hbd.training.algorithms.base import get_algorithm
from tf_hbd.training.algorithms.base import make_algorithm
from tf_hbd.training.algorithms.base import options_from_flags
from tf_hbd.training.algorithms.base import register_algorithm
from tf_hbd.training.algorithms import bptt  # pylint: disable=unused-import
from tf_hbd.training.algorithms import rtrl  # pylint: disable=unused-import
from tf_hbd.training.algorithms import sab  # pylint: disable=unused-import
from tf_hbd.training.algorithms import snap  # pylint: disable=unused-import
from tf_hbd.training.algorithms import uoro  # pylint: disable=unused-import

__all__ = ["ALGORITHMS", "Algorithm", "get_algorithm", "make_algorithm",
           "options_from_flags", "register_algorithm"]
