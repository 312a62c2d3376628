"""The lecture decks the gallery's entries quote, by their number in the course."""

from __future__ import annotations

DECKS = {
    "000": "Velasco-Forero, Optimization on Deep Learning",
    "001": "Optimization for Deep Learning",
    "002": "Intro to Deep Learning, Lecture 7: Optimization III",
    "003": "Yao, An Introduction to Optimization and Regularization Methods in Deep Learning",
    "004": "Payberah, Training Deep Feedforward Networks",
}


def deck(number: str) -> str:
    """``"lecture 001: Optimization for Deep Learning"``; KeyError for an unknown deck."""
    return f"lecture {number}: {DECKS[number]}"
