from translator.commands.main import main

raise SystemExit(main())
