"""The web UI, run from a checkout: ``python app.py [--articles DIR] [--index DIR] [--host H] [--port P] [-v]``.

The code lives in the package (``qa.ui``; the article folder's rules in ``qa.library``), so an installed qa
serves the same app with ``qa serve``. This file only keeps the checkout's familiar command working, with
the same flags and the ``QA_APP_PASSWORD`` environment variable (see ``qa.ui.app``).
"""

from qa.ui import main

if __name__ == "__main__":
    raise SystemExit(main())
