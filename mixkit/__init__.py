"""mixkit: choose a pretraining data mixture from small proxy runs and fitted mixing laws."""

__version__ = "0.1.0"
