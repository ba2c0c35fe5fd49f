"""Choosing nodes: strategies and composable filters (canaries, versions, labels).

client = trimicro.open_client(
    selector=trimicro.selector.Selector(
        "round_robin", filters=[trimicro.selector.version_split({"1.0.0": 90, "1.1.0": 10})]
    )
)
"""

from .rpc._outlier import OutlierDetector as OutlierDetector
from .rpc._retry import RetryBudget as RetryBudget
from .rpc._retry import RetryPolicy as RetryPolicy
from .rpc._selector import Candidate as Candidate
from .rpc._selector import Filter as Filter
from .rpc._selector import Selection as Selection
from .rpc._selector import Selector as Selector
from .rpc._selector import by_endpoint as by_endpoint
from .rpc._selector import by_label as by_label
from .rpc._selector import by_metadata as by_metadata
from .rpc._selector import by_version as by_version
from .rpc._selector import pin_version as pin_version
from .rpc._selector import version_split as version_split

__all__ = [
    "Candidate",
    "Filter",
    "OutlierDetector",
    "RetryBudget",
    "RetryPolicy",
    "Selection",
    "Selector",
    "by_endpoint",
    "by_label",
    "by_metadata",
    "by_version",
    "pin_version",
    "version_split",
]
