"""baocao: Excel-first reporting toolkit for Vietnamese provincial departments."""

__version__ = "0.1.0"

from .forms import Form, Indicator, available_forms, get_form  # noqa: E402
from .round import Round, Unit, load_round  # noqa: E402
from .yamlio import ConfigError  # noqa: E402

__all__ = ["ConfigError", "Form", "Indicator", "Round", "Unit", "available_forms", "get_form", "load_round"]
