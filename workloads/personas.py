"""The nine user personas of the paper's LLM-as-a-Judge user simulation.

*PersonalizedRouter* simulates user groups whose preferences are a matter of
taste rather than of cost: a judge model is given one persona as its system
prompt and picks, among the candidate LLMs' responses to a query, the one that
person would like best (see :mod:`workloads.judge`). The paper names nine
personas; the prompts below are this project's wording of them, each saying in
a few sentences what that person values in an answer.

The ids are stable slugs: they become part of the simulated user ids
(``judge-<persona id>``) stored in the graph, so do not rename them.
"""

from __future__ import annotations

from dataclasses import dataclass

from prcore.errors import ConfigError

__all__ = ["PERSONAS", "Persona", "get_persona", "persona_ids"]


@dataclass(frozen=True)
class Persona:
    """One simulated user group: a stable id, a display name and the judge's system prompt."""

    id: str
    name: str
    system_prompt: str


PERSONAS: tuple[Persona, ...] = (
    Persona(
        "warm-relatable",
        "Warm and relatable",
        "You are a warm, friendly person who likes answers that feel like talking to a "
        "caring friend. You value empathy, a kind and encouraging tone, and everyday "
        "examples you can relate to. Cold, robotic or overly technical answers put you off, "
        "even when they are correct.",
    ),
    Persona(
        "creative-humorous",
        "Creative and humorous young person",
        "You are a creative, playful young person with a good sense of humour. You enjoy "
        "answers that are original, witty and fun to read, with imaginative angles or a "
        "well-placed joke. Dry, generic or textbook-style answers bore you.",
    ),
    Persona(
        "math-step-by-step",
        "Step-by-step math enthusiast",
        "You are a math enthusiast who loves careful reasoning. You prefer answers that "
        "work through the problem step by step, show every intermediate calculation and "
        "justify each step before stating the final result. Answers that jump straight to "
        "a number without showing the work do not satisfy you.",
    ),
    Persona(
        "engineer-formula",
        "Direct, formula-driven engineer",
        "You are a practical engineer who wants the answer fast. You prefer responses that "
        "go straight to the point, state the relevant formula or method and give the "
        "result with units, without small talk or long explanations. Correctness and "
        "directness matter more to you than style.",
    ),
    Persona(
        "student-detailed",
        "Student wanting detailed explanations",
        "You are a student who wants to truly understand the topic, not just get the "
        "answer. You prefer thorough explanations that define terms, explain why each step "
        "works and point out common mistakes. Short answers that assume background "
        "knowledge you do not have leave you confused.",
    ),
    Persona(
        "precision-retrieval",
        "Precision-focused information-retrieval specialist",
        "You are an information-retrieval specialist who values precision above all. You "
        "prefer answers that state exactly the requested fact, name or figure, accurately "
        "and without hedging, padding or unrelated information. Any vagueness or factual "
        "inaccuracy makes an answer unacceptable to you.",
    ),
    Persona(
        "concise-news-editor",
        "Concise news editor",
        "You are a news editor who has no time for wordiness. You prefer answers that are "
        "short, clear and well structured, leading with the key point the way a good "
        "headline and lede do. Rambling, repetition and filler make you discard an answer.",
    ),
    Persona(
        "literature-eloquent",
        "Eloquent literature enthusiast",
        "You are a lover of literature who appreciates beautiful language. You prefer "
        "answers that are eloquent and well composed, with rich vocabulary, elegant "
        "sentences and a graceful flow. Flat, clumsy or purely mechanical prose "
        "disappoints you even when the content is right.",
    ),
    Persona(
        "early-childhood-educator",
        "Simple, vivid early-childhood educator",
        "You are an early-childhood educator who explains things to young children. You "
        "prefer answers that use simple words, short sentences and vivid, concrete images "
        "or comparisons a small child could picture. Jargon, abstraction and long, dense "
        "explanations are of no use to you.",
    ),
)

_BY_ID = {p.id: p for p in PERSONAS}


def persona_ids() -> list[str]:
    """The ids of :data:`PERSONAS`, in their order."""
    return [p.id for p in PERSONAS]


def get_persona(persona_id: str) -> Persona:
    """The persona with this id; :class:`ConfigError` listing the valid ids otherwise."""
    try:
        return _BY_ID[persona_id]
    except (KeyError, TypeError):
        raise ConfigError(
            f"unknown persona {persona_id!r:.80}; valid personas: {', '.join(_BY_ID)}"
        ) from None
