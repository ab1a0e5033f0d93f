import pytest

from assistant.conversation import contextualize

ZEL = "What did Zelensky say to Russians?"
LAV = "What did Lavrov say at the UN?"


@pytest.mark.parametrize(
    ("history", "question", "expected"),
    [
        ([LAV], "What did he accuse Ukraine of?", "What did Lavrov accuse Ukraine of?"),
        (
            [ZEL, "And what did Lavrov say at the UN?"],
            "What did he accuse Ukraine of?",
            "What did Lavrov accuse Ukraine of?",
        ),
        ([ZEL], "And what did Lavrov say at the UN?", "What did Lavrov say at the UN?"),
        ([ZEL], "What about Lavrov?", "What did Lavrov say to Russians?"),
        ([ZEL], "And the Kremlin?", "What did the Kremlin say to Russians?"),
        (
            ["How did men react to the mobilisation in Belgorod?"],
            "And in Dagestan?",
            "How did men react to the mobilisation in Dagestan?",
        ),
        (
            ["What happened to Ivan Fedorov, the mayor of Melitopol?"],
            "Who has asked for his release?",
            "Who has asked for Ivan Fedorov's release?",
        ),
        (["What did the Russian girl do when her father left?"], "Where did she live?", "Where did Russian girl live?"),
        (
            ["Did the men at the Dagestan conscription point want to enlist?"],
            "Why not?",
            "Why not (men Dagestan conscription point want enlist)?",
        ),
    ],
)
def test_follow_ups_are_made_standalone(history, question, expected):
    assert contextualize(question, history) == expected


OPEC = "What did OPEC decide in March 1987?"


@pytest.mark.parametrize(
    ("history", "question", "expected"),
    [
        ([OPEC], "And in June 1987?", "What did OPEC decide in June 1987?"),
        ([OPEC], "What about June 1987?", "What did OPEC decide in June 1987?"),
        ([OPEC], "And last week?", "What did OPEC decide last week?"),
        ([OPEC], "And since September?", "What did OPEC decide since September?"),
        (["What did OPEC decide?"], "And in June 1987?", "What did OPEC decide in June 1987?"),
        ([OPEC], "What about Iraq?", "What did Iraq decide in March 1987?"),
    ],
)
def test_a_follow_up_that_is_only_a_date_changes_the_period(history, question, expected):
    assert contextualize(question, history) == expected


@pytest.mark.parametrize(
    ("question", "expected"),
    [
        ("omelette recipe with cheese", "omelette recipe with cheese"),
        ("What did Putin announce?", "What did Putin announce?"),
        ("And what did Zelensky tell his soldiers?", "What did Zelensky tell his soldiers?"),
    ],
)
def test_questions_that_stand_alone_are_left_alone(question, expected):
    assert contextualize(question, [ZEL]) == expected


def test_a_place_is_not_he_and_no_history_changes_nothing():
    assert "Dagestan answer" not in contextualize("And how did she answer?", ["What did the men in Dagestan shout?"])
    assert contextualize("What did he say?", []) == "What did he say?"
