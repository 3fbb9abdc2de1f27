"""Portfolios: tables read, decided column-wise, run locally or on Dask, synthetic data (imports record and below)."""
