"""reelface: films in, clean identity-organised face data sets out."""

__version__ = "0.1.0"
