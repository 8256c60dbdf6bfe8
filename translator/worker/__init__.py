"""The worker process of one pool: the loop (`worker`), its jobs and groups (`jobs`), the
translation stage (`translation`), each message's fate (`fates`), results and dead letters
(`results`), spans (`spans`), heartbeats and utilization (`reporting`, `utilization`), and the
process's assembly (`runner`). May import `translator.contracts`, `runtime`, `bus` and
`inference`."""
