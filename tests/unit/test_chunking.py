from orders_core.chunking import ID_LIST_LIMIT, chunks


def test_chunks_keep_the_order_and_the_last_one_holds_the_rest():
    assert list(chunks([1, 2, 3, 4, 5], 2)) == [[1, 2], [3, 4], [5]]


def test_a_list_that_divides_evenly_has_no_empty_last_chunk():
    assert list(chunks(list("abcd"), 2)) == [["a", "b"], ["c", "d"]]


def test_an_empty_list_has_no_chunks():
    assert list(chunks([], 900)) == []


def test_a_short_list_is_one_chunk():
    assert list(chunks([7, 8], 900)) == [[7, 8]]


def test_an_id_list_stays_under_sqlites_oldest_variable_limit():
    assert ID_LIST_LIMIT < 999
