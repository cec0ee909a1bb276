"""DatasetInfo objects for the prompt tests, built directly (no dependency on the datasets package)."""

from affectbench.core.types import DatasetInfo, TaskType

MELD = DatasetInfo(
    "meld",
    TaskType.CLASSIFICATION,
    labels=("neutral", "surprise", "fear", "sadness", "joy", "disgust", "anger"),
    task_name="emotion",
)
MELD_SENT = DatasetInfo(
    "meld-sentiment", TaskType.CLASSIFICATION, labels=("negative", "neutral", "positive"), task_name="sentiment"
)
SENT2 = DatasetInfo("sentiment-2", TaskType.CLASSIFICATION, labels=("negative", "positive"), task_name="sentiment")
IEMOCAP6 = DatasetInfo(
    "iemocap",
    TaskType.CLASSIFICATION,
    labels=("happy", "sad", "neutral", "angry", "excited", "frustrated"),
    task_name="emotion",
)
IEMOCAP4 = DatasetInfo(
    "iemocap4", TaskType.CLASSIFICATION, labels=("happy", "sad", "neutral", "angry"), task_name="emotion"
)
MUSTARD = DatasetInfo("mustard", TaskType.CLASSIFICATION, labels=("sincere", "sarcastic"), task_name="sarcasm")
URFUNNY = DatasetInfo("urfunny", TaskType.CLASSIFICATION, labels=("not humorous", "humorous"), task_name="humour")
MOSI = DatasetInfo("mosi", TaskType.REGRESSION, score_range=(-3.0, 3.0), metric_suite="mosi", task_name="sentiment")
MOSEI = DatasetInfo("mosei", TaskType.REGRESSION, score_range=(-3.0, 3.0), metric_suite="mosi", task_name="sentiment")
SIMS = DatasetInfo(
    "sims", TaskType.REGRESSION, score_range=(-1.0, 1.0), metric_suite="sims", task_name="sentiment", language="zh"
)
GENERIC = DatasetInfo("manifest", TaskType.CLASSIFICATION, labels=("calm", "stressed"), task_name="stress")

ALL_CLASSIFICATION = [MELD, MELD_SENT, SENT2, IEMOCAP6, IEMOCAP4, MUSTARD, URFUNNY, GENERIC]
ALL_REGRESSION = [MOSI, MOSEI, SIMS]
