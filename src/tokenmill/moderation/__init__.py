"""Content moderation: the sensitive-term lexicon and its stream scanner (semantic.py: the classifier).

    from tokenmill.moderation import Lexicon, StreamScanner, TermList
    lexicon = Lexicon.default()                 # or Lexicon([TermList.from_file(p), ...], allow=TermList)
    lexicon.find("buy c0caine")                 # [Match(term='cocaine', list_name='drugs', start=4, end=11)]
    scanner = StreamScanner(lexicon, "block")   # one per streamed response: feed(chunk)..., finish()

Normalisation (tokenmill.moderation.normalize) is the same for terms and texts.
"""

from tokenmill.moderation.lexicon import Lexicon, Match, TermFileError, TermList, default_allow, default_lists
from tokenmill.moderation.scanner import ScanStep, StreamScanner

__all__ = ["Lexicon", "Match", "ScanStep", "StreamScanner", "TermFileError", "TermList", "default_allow",
           "default_lists"]
