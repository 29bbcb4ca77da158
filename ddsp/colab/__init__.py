"""Notebook helpers (`colab_utils`) and the notebooks in `demos/`.

`colab_utils` works in Google Colab and in a local Jupyter; recording and
uploading need Colab and say so elsewhere. Nothing is imported here.
"""
