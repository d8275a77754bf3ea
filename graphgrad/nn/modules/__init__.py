"""The layers of ``graphgrad.nn``, grouped by kind as in torch.nn.modules."""

from .activation import *
from .attention import *
from .container import *
from .conv import *
from .distance import *
from .linear import *
from .loss import *
from .module import *
from .normalization import *
from .padding import *
from .pixelshuffle import *
from .pooling import *
from .rnn import *
from .transformer import *
from .upsampling import *
