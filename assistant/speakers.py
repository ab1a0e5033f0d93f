"""Who is speaking: the people an article names, the roles it gives them, and the full name behind "Mr Smith",
"he" or "the minister" at a point in the text. Rules only, offline."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field

# Words that precede a name without being part of it, and words that stop a run of capitalised words.
TITLES = {
    "mr", "mrs", "ms", "miss", "dr", "sir", "dame", "lord", "lady", "prof", "professor", "rev", "st", "gen",
    "general", "col", "colonel", "capt", "captain", "sgt", "president", "chancellor", "king", "queen", "prince",
    "princess", "pope", "judge", "senator", "sen", "rep", "governor", "mayor", "minister", "secretary", "premier",
    "chairman", "chief", "commissioner", "ambassador", "archbishop", "bishop", "baroness", "baron", "coach",
    "manager", "boss", "pm", "mp", "leader", "deputy", "spokesman", "spokeswoman", "spokesperson", "director",
    "executive", "officer", "head", "foreign", "home", "prime", "defence", "defense", "armed", "forces", "finance",
    "health", "culture", "trade", "shadow", "justice", "education", "interior", "economy", "sports",
}  # fmt: skip
ROLES = {
    "minister", "secretary", "president", "chancellor", "spokesman", "spokeswoman", "spokesperson", "chairman",
    "chairwoman", "chief", "executive", "director", "manager", "coach", "boss", "leader", "head", "governor",
    "mayor", "ambassador", "official", "analyst", "economist", "lawyer", "prosecutor", "judge", "premier",
    "commissioner", "founder", "captain", "striker", "midfielder", "defender", "singer", "actor", "actress",
    "star", "author", "editor", "professor", "researcher", "officer", "general", "colonel", "source", "mp",
    "senator", "pm", "chief executive", "commander", "presenter", "producer", "king", "queen", "prince", "pope",
}  # fmt: skip
NOT_NAMES = {
    "the", "a", "an", "in", "on", "at", "but", "and", "or", "if", "as", "so", "this", "that", "these", "those",
    "it", "its", "he", "she", "they", "we", "i", "you", "his", "her", "their", "our", "my", "your", "there",
    "monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday", "january", "february",
    "march", "april", "may", "june", "july", "august", "september", "october", "november", "december",
    "yesterday", "today", "tomorrow", "speaking", "however", "meanwhile", "earlier", "later", "last", "next",
    "after", "before", "when", "while", "what", "who", "why", "how", "one", "some", "many", "most", "all", "both",
    "for", "from", "with", "by", "of", "to", "also", "then", "now", "still", "even", "just", "only", "said",
    "although", "though", "since", "despite", "unless", "whether", "where", "during", "until", "under", "over",
    "into", "about", "against", "neither", "nor", "not", "no", "yes", "here", "every", "each", "such",
    "former", "ex", "new", "old", "mrs", "would", "could", "should", "we're", "i'm", "it's", "let", "please",
}  # fmt: skip
NAME_PREFIXES = {"mr", "mrs", "ms", "miss", "dr", "sir", "dame", "lord", "lady", "prof", "professor"}
PRONOUNS = {"he", "she", "they", "i", "we"}
_CAP = r"(?:[A-Z][\w'’\-.]*|[A-Z]\.)"
_NAME_RUN = re.compile(rf"{_CAP}(?:\s+(?:(?:de|van|von|da|al|bin|der|la|le|du)\s+)?{_CAP})*")
_WORD = re.compile(r"[\w'’\-.]+")


def fold(text: str) -> str:
    """Lower case without accents or possessive endings, single spaces: the form names are compared in."""
    text = unicodedata.normalize("NFKD", text)
    text = "".join(c for c in text if not unicodedata.combining(c)).lower().replace("’", "'")
    text = re.sub(r"'s\b", "", text)
    return re.sub(r"[^\w\s-]", " ", re.sub(r"\s+", " ", text)).strip()


def _strip_titles(words: list[str]) -> list[str]:
    """A name's words without the titles and roles before it ("Foreign Secretary James Cleverly" -> the name)."""
    i = 0
    while i < len(words) - 1 and fold(words[i]).rstrip(".") in TITLES:
        i += 1
    return words[i:]


def split_name(words: list[str]) -> tuple[list[str], list[str]]:
    """A run of capitalised words as (titles and roles, name): "Russian Foreign Minister Sergei Lavrov" ->
    (["Russian", "Foreign", "Minister"], ["Sergei", "Lavrov"])."""
    cut = 0
    for i, w in enumerate(words[:-1]):
        if fold(w).rstrip(".") in TITLES or fold(w).split("-")[-1] in TITLES:
            cut = i + 1
    return words[:cut], words[cut:]


def name_in(phrase: str) -> str | None:
    """The name a speaker phrase ends with ("German foreign minister Annalena Baerbock" -> "Annalena
    Baerbock", "Mr Cleverly" -> "Cleverly"); None when it names no one or the name is not its head ("officials
    in Donetsk", "Ukrainian officials")."""
    phrase = phrase.strip(" ,.")
    runs = list(_NAME_RUN.finditer(phrase))
    if not runs or runs[-1].end() != len(phrase):
        return None
    head = fold(phrase[: runs[-1].start()]).split()
    if any(w in {"of", "in", "from", "for", "at", "with", "near", "by", "to"} for w in head):
        return None
    words = [w.rstrip(".,") for w in runs[-1].group(0).split()]
    while words and fold(words[0]) in NOT_NAMES:
        words = words[1:]
    words = [w[:-2] if w.endswith(("'s", "’s")) else w for w in words]
    _, words = split_name(words)
    if not words or fold(words[-1]).rstrip(".") in TITLES | NOT_NAMES:
        return None
    return " ".join(words)


@dataclass
class Cast:
    """The people (and bodies) an article has named up to a point, read in order: full names, the later forms
    of each, roles, and who was named last (for "he said")."""

    full: dict[str, str] = field(default_factory=dict)  # surname (folded) -> full name as first given
    forms: dict[str, list[str]] = field(default_factory=dict)  # full name -> other forms seen
    roles: dict[str, str] = field(default_factory=dict)  # role word -> full name last given that role
    last: str = ""  # the person last named as a speaker or subject

    def meet(self, name: str, role: str = "") -> str:
        """Note a name met in the text (with the role given to it, if any); returns its full form."""
        words = name.split()
        key = fold(words[-1])
        if len(words) >= 2 and key not in self.full:
            self.full[key] = name
        full = self.full.get(key, name)
        if name != full and name not in self.forms.setdefault(full, []):
            self.forms[full].append(name)
        self.forms.setdefault(full, [])
        if role:
            self.roles[_role_of(role)] = full
            self.roles[_role_key(role)] = full
        return full

    def holder(self, phrase: str) -> str:
        """Who last held the role a phrase names ("the Armed Forces minister", "the minister"), or ""."""
        key, head = _role_key(phrase), _role_of(phrase)
        return self.roles.get(key) or (self.roles.get(head, "") if head else "")

    def resolve(self, phrase: str) -> str:
        """The speaker a phrase stands for: a name in full, a pronoun as the person last named, a role ("the
        minister") as the person last given it, else the phrase itself as the article describes them."""
        bare = phrase.strip(" ,")
        low = fold(bare)
        if low in PRONOUNS:
            return self.last if low in {"he", "she"} else ""
        name = name_in(bare)
        head = _role_of(bare)
        if name is not None and not _is_description(bare):
            full = self.meet(name, head)
            titled = bare.split()
            if len(titled) == 2 and fold(titled[0]).rstrip(".") in NAME_PREFIXES and bare not in self.forms[full]:
                self.forms[full].append(bare)  # "Mr Cleverly"
            self.last = full
            return full
        words = low.split()
        if words[:1] == ["the"] and head and self.holder(bare) and len(words) <= 4:
            self.last = self.holder(bare)
            return self.last
        return bare

    def forms_of(self, full: str) -> list[str]:
        """The other forms the article used for a speaker so far."""
        return list(self.forms.get(full, []))

    def person(self, phrase: str) -> str:
        """The person a sentence's subject names (a full name, a known surname, "the minister" with a known
        holder), else "": what a later "he" may stand for."""
        name = name_in(phrase)
        if name is not None and not _is_description(phrase):
            key = fold(name.split()[-1])
            if len(name.split()) >= 2 or key in self.full:
                return self.meet(name)
            return ""
        if fold(phrase).split()[:1] == ["the"] and _role_of(phrase):
            return self.holder(phrase)
        return ""


def _role_of(phrase: str) -> str:
    """The role word a phrase gives ("the foreign minister" -> "minister"), or ""."""
    for w in reversed(fold(phrase).split()):
        if w in ROLES:
            return w
    return ""


def _role_key(phrase: str) -> str:
    """A role phrase as a key: folded, without articles, nationalities kept ("the Armed Forces minister" ->
    "armed forces minister")."""
    words = [w for w in fold(phrase).split() if w not in {"the", "a", "an", "its", "his", "her", "their"}]
    while words and words[-1] not in ROLES:
        words.pop()
    return " ".join(words[-3:])


def _is_description(phrase: str) -> bool:
    """Whether a phrase describes an unnamed speaker ("a woman from Omsk", "one journalist") rather than names one."""
    low = fold(phrase).split()
    return bool(low) and low[0] in {"a", "an", "one", "another", "some", "many", "several", "two", "three"}


def learn(cast: Cast, text: str) -> None:
    """Meet the names a stretch of text gives with a role beside them ("Foreign Minister Sergei Lavrov",
    "Pavel Chikov, a Russian human rights lawyer,"), and every full name, in order."""
    for m in _NAME_RUN.finditer(text):
        words = [w.rstrip(".,") for w in m.group(0).split()]
        while words and fold(words[0]) in NOT_NAMES:
            words = words[1:]
        if len(words) < 2:
            continue
        titles, words = split_name(words)
        if len(words) < 2 or any(fold(w) in NOT_NAMES for w in words):
            continue
        before = text[max(0, m.start() - 40) : m.start()]
        after = text[m.end() : m.end() + 60]
        role = " ".join(titles) if _role_of(" ".join(titles)) else ""
        lead = " ".join(_WORD.findall(before)[-3:])
        if not role and _role_of(lead):
            role = lead
        appositive = re.match(r",\s+(?:the|a|an|its|their|his|her)?\s*([\w\s'’-]{3,50}?),", after)
        if not role and appositive and _role_of(appositive.group(1)):
            role = appositive.group(1)
        cast.meet(" ".join(words), role)
