"""Operations: health probes, structured logs, the worker heartbeat and error tracking."""
