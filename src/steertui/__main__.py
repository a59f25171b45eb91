from steertui.cli import main

raise SystemExit(main())
