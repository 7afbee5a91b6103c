"""jiandong: backend of the club's WeChat Official Account H5 app."""

__version__ = "0.1.0"
