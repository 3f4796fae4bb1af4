"""The threaded pipeline: capture -> detection -> pose -> tracking -> sinks."""
