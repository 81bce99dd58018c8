"""What every layer shares and none owns: the settings object (`settings.py`), the base
errors (`errors.py`), the documents and passages citations are made of (`documents.py`) and
the word analyser both the lexical index and the question use (`text.py`). It imports no
other citeqa package."""
