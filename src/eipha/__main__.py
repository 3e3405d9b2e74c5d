from __future__ import annotations

from eipha.entry import main

if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
