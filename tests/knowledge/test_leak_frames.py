"""Leak detection reads what a clause asserts: a verdict that cites evidence still states the answer;
a number on the dataset's own scale states it too, and `mask` removes it."""

import pytest

from affectbench.core.types import DatasetInfo, TaskType
from affectbench.knowledge.leaks import leak_kind
from affectbench.knowledge.masking import mask_labels

SARC = DatasetInfo("mustard", TaskType.CLASSIFICATION, labels=("sarcastic", "sincere"), task_name="sarcasm")
EMO = DatasetInfo("e", TaskType.CLASSIFICATION, labels=("joy", "anger", "sadness"), task_name="emotion")
MOSI = DatasetInfo("mosi", TaskType.REGRESSION, score_range=(-3.0, 3.0), metric_suite="mosi", task_name="sentiment")
SIMS = DatasetInfo("sims", TaskType.REGRESSION, score_range=(-1.0, 1.0), metric_suite="sims", task_name="sentiment")

# answer statements phrased as evidence: each cites a cue, and each asserts the verdict
ANSWERS = [
    ("Given the exaggerated tone, the answer is sarcastic.", "sarcastic", SARC),
    ("The tone makes clear the speaker is sarcastic.", "sarcastic", SARC),
    ("Judging by her voice and face, she is sad.", "sadness", EMO),
    ("The facial expression and the pitch both point one way: overall, anger.", "anger", EMO),
    ("Because of the flat prosody, I would say the utterance is sincere.", "sincere", SARC),
    ("With a smile on her face, the speaker is happy.", "joy", EMO),
    ("The voice is loud, so the speaker is angry.", "anger", EMO),
    ("The words are mocking, therefore sarcastic.", "sarcastic", SARC),
]
# evidence: the mention is asserted of a cue, or names a cue's value
CUES = [
    ("The voice sounds sad and tired.", "sadness", EMO),
    ("A sarcastic tone, with raised brows.", "sarcastic", SARC),
    ("face: happy 0.71, neutral 0.20, angry 0.05", "anger", EMO),
    ("The speaker's voice is angry.", "anger", EMO),
    ("anger in the face, calm in the voice", "anger", EMO),
]


@pytest.mark.parametrize(("text", "target", "info"), ANSWERS)
def test_a_verdict_that_cites_evidence_states_the_answer(text, target, info):
    assert leak_kind(text, target, info) == "answer"


@pytest.mark.parametrize(("text", "target", "info"), CUES)
def test_a_mention_asserted_of_a_cue_is_evidence(text, target, info):
    assert leak_kind(text, target, info) == "cue"


@pytest.mark.parametrize(
    ("text", "target", "info"),
    [
        ("The sentiment score is +2.0 on the −3..3 scale.", 2.4, MOSI),
        ("Sentiment: 2.5", 1.8, MOSI),
        ("I'd rate it 2 out of 3.", 0.6, MOSI),
        ("Predicted score: -1.2", -2.0, MOSI),
        ("情感分数为 0.6", 0.8, SIMS),
        ("The rating would be -0.4 on a scale of -1 to 1.", -0.8, SIMS),
    ],
)
def test_a_number_on_the_datasets_scale_states_the_answer_and_mask_removes_it(text, target, info):
    assert leak_kind(text, target, info) == "answer"
    masked = mask_labels(text, info)
    assert "[…]" in masked and leak_kind(masked, target, info) is None


def test_numbers_that_are_not_the_answer_score_are_left_alone():
    assert leak_kind("Sentiment: 2.5", -1.0, MOSI) is None  # the other polarity states no gold answer
    assert leak_kind("sentiment: 7", 2.0, MOSI) is None  # off the scale: not an answer on it
    assert leak_kind("pitch 220 Hz, speech rate 3.1 syll/s", 1.0, MOSI) is None
    assert leak_kind("words: positive (vader +0.62)", 1.0, MOSI) == "cue"  # a lexicon's score is evidence
    assert mask_labels("pitch 2.0 semitones above baseline", MOSI) == "pitch 2.0 semitones above baseline"
    assert mask_labels("Sentiment: 2.5", MOSI) == "Sentiment: […]"
