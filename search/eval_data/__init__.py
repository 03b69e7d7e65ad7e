"""The second evaluation set (issue 11): a corpus manifest over ../shared and its questions.

``corpus_v2.csv`` lists the five seed texts and the 17 municipal PDFs of ``../shared/pdfs``;
:mod:`search.eval_data.make_corpus` assembles a corpus directory from it; ``questions_v2.jsonl``
holds the questions (README.md says how they were written and split).
"""
