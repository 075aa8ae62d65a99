"""``python -m speechengine`` is the ``speechengine`` command."""

from speechengine.cli import main

main()
