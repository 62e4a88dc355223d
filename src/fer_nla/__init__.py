"""fer-nla: facial expression recognition under label ambiguity, noise and imbalance."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("fer-nla")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
