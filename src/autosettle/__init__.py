"""autosettle: POS acquiring and automatic settlement."""
