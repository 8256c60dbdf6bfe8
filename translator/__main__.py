from translator.commands.main import main

if __name__ == "__main__":  # not when a worker process (anyio.to_process) imports it
    raise SystemExit(main())
