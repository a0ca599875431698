from audio.clauses import ClauseChunker, iter_clauses


def test_sentences_are_released_as_soon_as_they_end():
    chunker = ClauseChunker()
    assert chunker.push("Paris is the capital") == []
    assert chunker.push(" of France. It is") == ["Paris is the capital of France."]
    assert chunker.flush() == ["It is"]


def test_long_comma_clause_is_cut_but_short_one_is_not():
    assert list(iter_clauses(["Yes, ", "it is.\n"])) == ["Yes, it is."]
    tokens = ["When you boil water at sea level, ", "it turns to steam."]
    assert list(iter_clauses(tokens)) == ["When you boil water at sea level,", "it turns to steam."]


def test_text_without_punctuation_is_cut_at_the_word_limit():
    words = " ".join(f"w{i}" for i in range(70))
    clauses = list(iter_clauses([words], max_words=30))
    assert [len(c.split()) for c in clauses] == [30, 30, 10]
    assert " ".join(clauses) == words


def test_the_first_clause_may_end_at_a_phrase_boundary():
    chunker = ClauseChunker(first_phrase_words=4)
    assert chunker.push("The capital of France is") == []  # "is" may still be "island"
    assert chunker.push(" Paris") == ["The capital of France"]
    assert chunker.push(". The city is on the Seine and") == ["is Paris."]  # later clauses: sentences only
    assert chunker.flush() == ["The city is on the Seine and"]
    # too early in the sentence, or a sentence that ends first: no phrase cut
    assert list(iter_clauses(["The sky ", "is blue. ", "It is"], first_phrase_words=4)) == ["The sky is blue.", "It is"]
    assert list(iter_clauses(["Once upon a time, ", "a dragon lived."], first_phrase_words=4)) == [
        "Once upon a time,", "a dragon lived."]
