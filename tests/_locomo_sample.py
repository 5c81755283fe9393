"""A tiny conversation in LoCoMo's format, shared by the LoCoMo benchmark tests."""

from __future__ import annotations

from typing import Any


def _turn(speaker: str, dia_id: str, text: str, **extra: Any) -> dict[str, Any]:
    return {"speaker": speaker, "dia_id": dia_id, "text": text, **extra}


SAMPLE: dict[str, Any] = {
    "sample_id": "tiny-1",
    "conversation": {
        "speaker_a": "Ann",
        "speaker_b": "Ben",
        "session_1_date_time": "1:56 pm on 8 May, 2023",
        "session_1": [
            _turn("Ann", "D1:1", "Hi Ben, how was your weekend?"),
            _turn("Ben", "D1:2", "Great, I went kayaking on the river with my cousin."),
            _turn("Ann", "D1:3", "I finally bought a Zyntrax xylophone for the studio."),
            _turn(
                "Ben",
                "D1:4",
                "Look at this!",
                img_url=["http://example.invalid/kayak.jpg"],
                blip_caption="a photo of a red kayak on a beach",
            ),
        ],
        "session_2_date_time": "10:00 am on 20 May, 2023",
        "session_2": [
            _turn("Ann", "D2:1", "My sister moved to a new apartment last week."),
            _turn("Ben", "D2:2", "Nice! I started learning the violin."),
            _turn("Ann", "D2:3", "How are the violin lessons going?"),
            _turn("Ben", "D2:4", "Slowly, but my teacher is patient."),
        ],
    },
    "qa": [
        # The only turn sharing any word with this question is D1:3.
        {
            "question": "Which xylophone brand got purchased?",
            "answer": "Zyntrax",
            "evidence": ["D1:3"],
            "category": 4,
        },
        {
            "question": "Where did Ben go kayaking?",
            "answer": "on the river",
            "evidence": ["D1:2; D1:4"],  # two ids in one entry, as in the real data
            "category": 1,
        },
        {
            "question": "When did Ann's sister move?",
            "answer": "the week before 20 May 2023",
            "evidence": ["D2:1"],
            "category": 2,
        },
        {
            "question": "Who teaches Ann the violin?",
            "adversarial_answer": "a patient teacher",
            "evidence": ["D2:4"],
            "category": 5,
        },
        {
            "question": "What does Ben do for a living?",
            "answer": "unknown",
            "evidence": ["D9:99"],  # not a turn of the conversation: skipped
            "category": 3,
        },
    ],
}
