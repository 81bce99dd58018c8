"""The citeqa application: what a person or a program can do with citeqa, each in one place.

Layers, each importing only those below it:

- `server/` — HTTP routes and the command line: parse a request or arguments, call a
  `Citeqa`, print or serialise what it returns;
- `citeqa/` — the use cases (`app.py`: ingest, ask, search, documents, collections;
  `stream.py`: an answer as events; `evaluate.py`), with the one default-collection rule;
- `qa/` — answering, one stage per file;
- `index/` — loading, chunking, embedding and the store.

Other Python programs use it directly::

    from citeqa import Citeqa
    from core.settings import Settings

    app = Citeqa.build(Settings(data_dir="data"))
    print(app.ask("Who co-leads the lab?").answer)
"""

from citeqa.app import Citeqa

__all__ = ["Citeqa"]
