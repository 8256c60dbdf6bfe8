from zmq_compat.cli import main

raise SystemExit(main())
