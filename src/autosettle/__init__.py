"""autosettle: POS acquiring and automatic settlement."""

__version__ = "0.1.0"
