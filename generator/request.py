"""The melody request grammar, shared by the chat bot and the CLI: ``C4 D4:2 r E4 temp=0.7 bars=8``.

Seed notes are note names with octave (``C4``, ``F#4``, ``Bb3``), MIDI numbers (``60``) or rests
(``r``), each with an optional duration in quarter notes after a colon (``D4:2``, ``E4:0.5``).
The raw step form of the model (``60 _ _ _ 62 _``) is accepted too. Options are ``name=value``.
Every mistake raises :class:`RequestError`, whose message a chat user can act on.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass, field, replace
from fractions import Fraction

from music21 import key as m21key

from generator import encoding, form
from generator.keys import key_label, parse_key
from generator.ranges import (
    MAX_BARS,
    MAX_BPM,
    MAX_PICKUP_QUARTERS,
    MAX_SEED,
    MAX_SEED_NOTES,
    MAX_STEPS,
    MAX_TEMPERATURE,
    MAX_TOP_K,
    MIN_BPM,
    MIN_TEMPERATURE,
    MIN_TOP_K,
)

EXAMPLE = "C4 D4 E4:2 G4 temp=0.8 bars=8"
DEFAULT_BARS = 8
DEFAULT_TEMPERATURE = 1.0
DEFAULT_BPM = 100


@dataclass(frozen=True)
class Option:
    """One ``name=value`` option of the grammar: what it means and which values it takes, in
    one place, so help texts, the parser and each platform's typed options (a Discord slash
    command's ranges and choices) can never disagree."""

    name: str
    help: str
    kind: type = str  # int, float or str
    low: float | None = None
    high: float | None = None
    open_low: bool = False  # ``low`` itself is not allowed
    choices: tuple[str, ...] = ()


# General MIDI programs a folk tune is often played on, by the names users type (inst=flute).
INSTRUMENT_NAMES = {
    0: "piano",
    6: "harpsichord",
    21: "accordion",
    22: "harmonica",
    24: "guitar",
    40: "violin",
    42: "cello",
    46: "harp",
    56: "trumpet",
    60: "horn",
    68: "oboe",
    71: "clarinet",
    73: "flute",
    74: "recorder",
    78: "whistle",
    79: "ocarina",
    105: "banjo",
    109: "bagpipe",
    110: "fiddle",
}

OPTIONS: dict[str, Option] = {
    option.name: option
    for option in (
        Option(
            "temp",
            f"temperature, {MIN_TEMPERATURE:g}–{MAX_TEMPERATURE:g} (lower: safer, higher: wilder)",
            float,
            MIN_TEMPERATURE,
            MAX_TEMPERATURE,
        ),
        Option("bars", f"length of the whole melody in bars, 1–{MAX_BARS}", int, 1, MAX_BARS),
        Option("steps", f"length in 16th-note steps, 1–{MAX_STEPS}", int, 1, MAX_STEPS),
        Option("key", "key of the melody, e.g. G, Em, F#m, Bb (default: heard from your notes)"),
        Option(
            "bpm", f"tempo in quarter notes per minute, {MIN_BPM}–{MAX_BPM}", int, MIN_BPM, MAX_BPM
        ),
        Option(
            "meter",
            f"time signature: {', '.join(form.REQUESTABLE_METERS)} (default 4/4)",
            choices=tuple(form.REQUESTABLE_METERS),
        ),
        Option(
            "pickup",
            "the upbeat in quarter notes, e.g. pickup=1 (default: heard from your notes)",
            float,
            0,
            MAX_PICKUP_QUARTERS,
        ),
        Option(
            "seed",
            f"random seed 0–{MAX_SEED}: the same seed gives the same melody (seed=new: another)",
            int,
            0,
            MAX_SEED,
        ),
        Option(
            "inst",
            "the instrument of the audio preview and the MIDI file: a name ("
            + ", ".join(INSTRUMENT_NAMES.values())
            + ") or a General MIDI program 0–127",
            choices=tuple(INSTRUMENT_NAMES.values()),
        ),
        Option(
            "xml",
            "xml=yes also sends the score as MusicXML, for notation programs",
            choices=("yes", "no"),
        ),
        Option(
            "topk",
            f"sample only among the k most likely next steps (k ≥ {MIN_TOP_K})",
            int,
            MIN_TOP_K,
            MAX_TOP_K,
        ),
        Option(
            "topp",
            "sample only among the most likely steps that add up to p (0 < p ≤ 1)",
            float,
            0,
            1,
            open_low=True,
        ),
    )
}
OPTION_HELP = {name: option.help for name, option in OPTIONS.items()}
NAMED_INSTRUMENTS = {name: program for program, name in INSTRUMENT_NAMES.items()}
NEW_SEED = "new"  # seed=new: a seed chosen afresh, so !again gives another melody

_NOTE = re.compile(r"^(?P<letter>[A-Ha-h])(?P<accidental>##|#|bb|b|♯|♭|-)?(?P<octave>-?\d)?$")
DEFAULT_OCTAVE = 4  # "c d e" are C4 D4 E4
_ACCIDENTAL_SEMITONES = {"": 0, "#": 1, "♯": 1, "##": 2, "b": -1, "♭": -1, "-": -1, "bb": -2}
# H is B in German, Dutch and Scandinavian usage; B stays B, as in English (not B flat).
_LETTER_PITCH_CLASS = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11, "H": 11}


class RequestError(ValueError):
    """A request a user typed that cannot be composed; ``str()`` is the message to show them."""

    def __init__(self, problem: str, example: str = EXAMPLE):
        self.problem = problem
        self.example = example
        super().__init__(f"{problem} Try: {example}")


@dataclass(frozen=True)
class SeedNote:
    """A seed event: ``pitch`` is a MIDI number or None for a rest; ``steps`` in 16ths."""

    pitch: int | None
    steps: int
    text: str = ""


@dataclass(frozen=True)
class MelodyRequest:
    """Everything needed to compose one melody; the same request and seed give the same melody."""

    seed_notes: tuple[SeedNote, ...]
    temperature: float = DEFAULT_TEMPERATURE
    bars: int | None = None
    steps: int | None = None
    key: str | None = None  # as the user wrote it, normalised (e.g. "F#m"); None = detect
    bpm: int = DEFAULT_BPM
    meter: str = "4/4"
    pickup: int | None = None  # upbeat in 16th steps; None = detect it from the seed
    rng_seed: int | None = None
    top_k: int | None = None
    top_p: float | None = None
    instrument: int | None = None  # a General MIDI program; None = the bot's default
    # Also send the score as MusicXML: how this one melody is delivered, not what it is, so it
    # is not part of the request written back (``!again`` does not repeat it).
    musicxml: bool = field(default=False, compare=False)
    text: str = field(default="", compare=False)

    @classmethod
    def parse(cls, text: str) -> MelodyRequest:
        return parse_request(text)

    @property
    def steps_per_bar(self) -> int:
        return form.model_meter(self.meter).steps_per_bar

    @property
    def seed_steps(self) -> int:
        return sum(n.steps for n in self.seed_notes)

    @property
    def length_in_bars(self) -> float:
        """The whole bars asked for (``steps=`` counted in bars, the upbeat not counted)."""
        if self.steps is not None:
            return self.steps / self.steps_per_bar
        return self.bars or DEFAULT_BARS

    def total_steps_with(self, pickup: int) -> int:
        """The melody's exact length in steps, seed included, for a given upbeat length."""
        if self.steps is not None:
            return self.steps
        return pickup + (self.bars or DEFAULT_BARS) * self.steps_per_bar

    @property
    def total_steps(self) -> int:
        """The melody's exact length in steps with the upbeat given (none if it is detected)."""
        return self.total_steps_with(self.pickup or 0)

    def seed_tokens(self) -> list[str]:
        return encoding.events_to_tokens(encoding.Event(n.pitch, n.steps) for n in self.seed_notes)

    def music21_key(self) -> m21key.Key | None:
        return parse_key(self.key) if self.key else None

    def with_options(self, **changes: object) -> MelodyRequest:
        return replace(self, **changes)

    def with_seed(self) -> MelodyRequest:
        """This request with its random seed chosen now if it has none, so that what is stored
        of it makes the very same melody again."""
        if self.rng_seed is not None:
            return self
        return replace(self, rng_seed=secrets.randbelow(MAX_SEED))

    def with_option_text(self, option_text: str) -> MelodyRequest:
        """This request with options typed by a user replaced (``temp=1.2 bars=16``).

        The notes stay; an option not named keeps its value, the random seed included, so
        ``!again 12 temp=1.2`` changes exactly what was asked and nothing else.
        """
        new_items = _items(option_text)
        for item in new_items:
            if "=" not in item:
                raise RequestError(
                    f"Only options can change here, not notes ('{item}').", example="temp=1.2"
                )
        named = {item.partition("=")[0].lower() for item in new_items}
        if "bars" in named:
            named.add("steps")
        if "steps" in named:
            named.add("bars")
        kept = [
            item
            for item in self.describe().split()
            if "=" not in item or item.partition("=")[0] not in named
        ]
        return parse_request(" ".join(kept + new_items))

    def describe(self) -> str:
        """The request written back in canonical form: what ``!again`` or the CLI would accept."""
        notes = " ".join(_note_text(n) for n in self.seed_notes)
        options = [f"temp={self.temperature:g}"]
        if self.steps is not None:
            options.append(f"steps={self.steps}")
        else:
            options.append(f"bars={self.bars or DEFAULT_BARS}")
        if self.key:
            options.append(f"key={self.key}")
        if self.bpm != DEFAULT_BPM:
            options.append(f"bpm={self.bpm}")
        if self.meter != "4/4":
            options.append(f"meter={self.meter}")
        if self.pickup is not None:
            options.append(f"pickup={self.pickup / 4:g}")
        if self.rng_seed is not None:
            options.append(f"seed={self.rng_seed}")
        if self.top_k is not None:
            options.append(f"topk={self.top_k}")
        if self.top_p is not None:
            options.append(f"topp={self.top_p:g}")
        if self.instrument is not None:
            options.append(f"inst={INSTRUMENT_NAMES.get(self.instrument, self.instrument)}")
        return f"{notes} {' '.join(options)}"

    def to_dict(self) -> dict[str, object]:
        return {
            "seed": [[n.pitch, n.steps] for n in self.seed_notes],
            "temperature": self.temperature,
            "bars": self.bars,
            "steps": self.steps,
            "key": self.key,
            "bpm": self.bpm,
            "meter": self.meter,
            "pickup": self.pickup,
            "rng_seed": self.rng_seed,
            "top_k": self.top_k,
            "top_p": self.top_p,
            "instrument": self.instrument,
        }


def _note_text(note: SeedNote) -> str:
    from music21 import pitch as m21pitch

    name = "r" if note.pitch is None else m21pitch.Pitch(midi=note.pitch).nameWithOctave
    name = name.replace("-", "b")
    if note.steps == 4:
        return name
    return f"{name}:{note.steps / 4:g}"


def parse_note_name(text: str) -> int:
    """MIDI number of ``C4``/``F#4``/``Bb3``/``60``; raises RequestError for anything else."""
    if text.isdecimal():
        number = int(text)
        if not 0 <= number <= 127:
            raise RequestError(f"MIDI note numbers go from 0 to 127, not {text}.")
        return number
    match = _NOTE.match(text)
    if not match:
        raise RequestError(
            f"I don't know the note '{text}'. Write notes as a letter, an optional # or b and an "
            "octave (C4, F#4, Bb3; without one, octave 4), a MIDI number (60) or r for a rest."
        )
    pitch_class = _LETTER_PITCH_CLASS[match["letter"].upper()]
    semitone = _ACCIDENTAL_SEMITONES[match["accidental"] or ""]
    octave = DEFAULT_OCTAVE if match["octave"] is None else int(match["octave"])
    midi = (octave + 1) * 12 + pitch_class + semitone
    if not 0 <= midi <= 127:
        raise RequestError(f"{text} is outside the MIDI range.")
    return midi


def _parse_duration(text: str, note_text: str, *, allow_zero: bool = False) -> int:
    try:
        quarters = Fraction(text)
    except (ValueError, ZeroDivisionError):
        raise RequestError(
            f"'{note_text}' has a duration I can't read; write quarter notes after a colon, "
            "like D4:2 (half note) or E4:0.5 (eighth)."
        ) from None
    steps = quarters * 4
    if allow_zero and steps == 0:
        return 0
    if steps.denominator != 1 or not 1 <= steps <= 64:
        raise RequestError(
            f"The duration in '{note_text}' must be a multiple of 0.25 (a 16th) "
            "between 0.25 and 16 quarter notes."
        )
    return int(steps)


def _parse_seed_note(item: str) -> SeedNote:
    name, _, duration = item.partition(":")
    steps = _parse_duration(duration, item) if duration else 4
    if name.lower() == encoding.REST:
        return SeedNote(None, steps, item)
    return SeedNote(parse_note_name(name), steps, item)


def _parse_raw_steps(items: list[str]) -> tuple[SeedNote, ...]:
    """The model's own step form: ``60 _ _ _ 62 _ r _``."""
    tokens: list[str] = []
    for item in items:
        if item in (encoding.HOLD, encoding.REST) or item.isdecimal():
            if item.isdecimal():
                parse_note_name(item)  # range check with a friendly message
            tokens.append(item)
        else:
            raise RequestError(
                f"'{item}' can't be mixed into the step form; use MIDI numbers, _ to hold "
                "and r for rests, like 60 _ _ _ 62 _ _ _.",
                example="60 _ _ _ 62 _ _ _ 64 _ _ _ temp=0.8",
            )
    if tokens[0] == encoding.HOLD:
        raise RequestError(
            "The step form can't start with _ (there is nothing to hold yet).",
            example="60 _ _ _ 62 _ _ _ temp=0.8",
        )
    events = encoding.tokens_to_events(tokens)
    return tuple(SeedNote(e.pitch, e.steps) for e in events)


_DECIMAL_COMMA = re.compile(r"=(\d+),(\d+)\b")


def _items(text: str) -> list[str]:
    """The words of a request. Commas separate them (``C4, D4, E4``), except a decimal comma
    in an option's value, as much of Europe writes it: ``temp=0,7`` is ``temp=0.7``."""
    return _DECIMAL_COMMA.sub(r"=\1.\2", text).replace(",", " ").split()


def _number(name: str, value: str, kind: type, low: float, high: float, *, open_low=False):
    try:
        number = kind(value)
    except ValueError:
        word = "a whole number" if kind is int else "a number"
        raise RequestError(f"{name}= needs {word}, not '{value}'.") from None
    if number != number or (number <= low if open_low else number < low) or number > high:
        bound = f"above {low:g}" if open_low else f"at least {low:g}"
        raise RequestError(f"{name}= must be {bound} and at most {high:g}, not {value}.")
    return number


def _parse_meter(value: str) -> str:
    match = re.fullmatch(r"(\d{1,2})/(\d{1,2})", value)
    meter = f"{int(match[1])}/{int(match[2])}" if match else value
    if meter not in form.REQUESTABLE_METERS:
        known = ", ".join(form.REQUESTABLE_METERS)
        raise RequestError(
            f"meter= takes a folk meter the model knows: {known}; not '{value}'.",
            example="C4 D4 E4 meter=3/4",
        )
    return meter


def _parse_instrument(value: str) -> int:
    if value.lower() in NAMED_INSTRUMENTS:
        return NAMED_INSTRUMENTS[value.lower()]
    if value.isdecimal() and 0 <= int(value) <= 127:
        return int(value)
    raise RequestError(
        f"inst= takes an instrument ({', '.join(NAMED_INSTRUMENTS)}) or a General MIDI "
        f"program 0–127, not '{value}'.",
        example="C4 D4 E4 inst=flute",
    )


def _apply_option(options: dict[str, object], name: str, value: str) -> None:
    if name in options:
        raise RequestError(f"{name}= is given twice.")
    if value == "":
        raise RequestError(f"{name}= needs a value: {OPTION_HELP[name]}.")
    option = OPTIONS[name]
    if name == "seed" and value.lower() == NEW_SEED:
        options[name] = None  # chosen when the melody is composed
    elif name == "meter":
        options[name] = _parse_meter(value)
    elif name == "inst":
        options[name] = _parse_instrument(value)
    elif name == "xml":
        if value.lower() not in ("yes", "no"):
            raise RequestError(f"xml= is yes or no, not '{value}'.", example="C4 D4 E4 xml=yes")
        options[name] = value.lower()
    elif name == "pickup":
        options[name] = _parse_duration(value, f"pickup={value}", allow_zero=True)
    elif name == "key":
        try:
            options[name] = key_label(parse_key(value))
        except ValueError:
            raise RequestError(
                f"key= must be a key like C, G, Em, F#m or Bb, not '{value}'."
            ) from None
    else:
        assert option.low is not None and option.high is not None
        number = _number(
            name, value, option.kind, option.low, option.high, open_low=option.open_low
        )
        options[name] = float(number) if option.kind is float else number


def parse_request(text: str, *, default_temperature: float = DEFAULT_TEMPERATURE) -> MelodyRequest:
    """Parse what a user typed into a request, or raise RequestError saying what to fix."""
    items = _items(text)
    options: dict[str, object] = {}
    seed_items: list[str] = []
    for item in items:
        if "=" in item:
            name, _, value = item.partition("=")
            name = name.lower()
            if name not in OPTION_HELP:
                known = ", ".join(f"{n}=" for n in OPTION_HELP)
                raise RequestError(f"Unknown option '{name}='. Options are {known}.")
            _apply_option(options, name, value)
        else:
            seed_items.append(item)
    if not seed_items:
        raise RequestError("Give me a few notes to start from.")
    if encoding.HOLD in seed_items:
        seed_notes = _parse_raw_steps(seed_items)
    else:
        seed_notes = tuple(_parse_seed_note(item) for item in seed_items)
    if len(seed_notes) > MAX_SEED_NOTES:
        raise RequestError(
            f"That's {len(seed_notes)} opening notes; {MAX_SEED_NOTES} at most, please."
        )
    if all(n.pitch is None for n in seed_notes):
        raise RequestError("Your opening needs at least one note, not only rests.")
    if "bars" in options and "steps" in options:
        raise RequestError("Give bars= or steps=, not both.")
    meter = str(options.get("meter", "4/4"))
    pickup = options.get("pickup")
    bar_steps = form.model_meter(meter).steps_per_bar
    if pickup is not None and int(pickup) >= bar_steps:  # type: ignore[call-overload]
        raise RequestError(
            f"An upbeat is shorter than a bar: pickup= must be less than {bar_steps / 4:g} "
            f"quarter notes in {meter}.",
            example=f"G4:0.5 C5 C5 D5 meter={meter} pickup=0.5",
        )
    request = MelodyRequest(
        seed_notes=seed_notes,
        temperature=float(options.get("temp", default_temperature)),  # type: ignore[arg-type]
        bars=options.get("bars"),  # type: ignore[arg-type]
        steps=options.get("steps"),  # type: ignore[arg-type]
        key=options.get("key"),  # type: ignore[arg-type]
        bpm=int(options.get("bpm", DEFAULT_BPM)),  # type: ignore[arg-type]
        meter=meter,
        pickup=pickup,  # type: ignore[arg-type]
        rng_seed=options.get("seed"),  # type: ignore[arg-type]
        top_k=options.get("topk"),  # type: ignore[arg-type]
        top_p=options.get("topp"),  # type: ignore[arg-type]
        instrument=options.get("inst"),  # type: ignore[arg-type]
        musicxml=options.get("xml") == "yes",
        text=text.strip(),
    )
    if request.seed_steps >= request.total_steps_with(request.pickup or 0):
        bars_needed = -(-request.seed_steps // request.steps_per_bar) + 1
        raise RequestError(
            f"Your opening already fills {request.seed_steps / request.steps_per_bar:g} bars; ask "
            f"for a longer melody, e.g. bars={min(bars_needed, MAX_BARS)}."
        )
    return request
