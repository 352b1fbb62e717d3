"""The COCO caption evaluation's PTB tokeniser, in pure Python (no Java).

Why this exists: captioning papers report CIDEr-D (and BLEU/ROUGE-L) computed by pycocoevalcap,
whose ``pycocoevalcap/tokenizer/ptbtokenizer.py`` pipes every caption through Stanford CoreNLP
3.4.1's ``edu.stanford.nlp.process.PTBTokenizer -preserveLines -lowerCase`` (Java) and then drops a
fixed list of punctuation tokens.  CIDEr-D weighs n-grams by how rare they are, so a home-made
tokeniser that splits "black-and-white" or "3.5", drops "&" or keeps "don't" whole moves the score a
lot (5.44 instead of 2.58 on one caption).  Requiring a JVM for an offline CLI is not an option, so
this module re-expresses the JFlex rules of CoreNLP's ``PTBLexer.flex`` as ``regex`` patterns.

How: at each position every rule is tried with POSIX (leftmost-longest) semantics; the longest
match, trailing context included, wins and ties go to the earlier rule, exactly like a JFlex
scanner.  JFlex ``%caseless`` applies to literals but not to character classes, so literals are
wrapped in ``(?i:...)`` (expanded to ``[xX]`` classes below) and classes are left alone.  Behaviour of
the 3.4.1 jar that differs from the public .flex (no Americanize, no ``\\/``/``\\*`` escaping, ``'tis``
-> ``'t is``, dotted words like ``file.txt``, gonna -> ``gon na``) was fixed empirically against the
jar.  Verified token-for-token against the real Java tokenizer on 285 hand-picked strings and 1,800
fuzzed ones (tests/test_eval_ptb.py keeps a sample with the jar's output).

Unicode: like the Java lexer (UTF-16, BMP-only JFlex 1.4 tables), characters outside the BMP (emoji)
are untokenizable and deleted; U+FE0F and other unmatched characters are deleted too.  Accented
letters are letters ("café" stays one word).

``ptb_tokenize_lines`` is one ``PTBTokenizer().tokenize`` call: pycocoevalcap writes all captions
of a call to one file joined by newlines, so trailing contexts see the next caption; tokenise a
whole corpus (all references, or all predictions) in one call to get pycocoevalcap's tokens.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import lru_cache

import regex

# pycocoevalcap/tokenizer/ptbtokenizer.py's PUNCTUATIONS.  The comparison is case-sensitive while
# the tokens are lowercased, so "-lrb-" is *not* removed there: kept, to give the same n-grams.
PUNCTUATIONS: tuple[str, ...] = (
    "''", "'", "``", "`", "-LRB-", "-RRB-", "-LCB-", "-RCB-", ".", "?", "!", ",", ":", "-", "--", "...", ";",
)
_PUNCT = frozenset(PUNCTUATIONS)

# ------------------------------------------------------------------ macros (PTBLexer.flex)
LETTER = r"\p{L}"
DIGIT = r"[\p{Nd}\u07C0-\u07C9]"
SGML = r"<\/?[A-Za-z!?][^>\r\n]*>"
SPMDASH = r"(?i:&(MD|mdash|ndash);)|[\u0096\u0097\u2013\u2014\u2015]"
SPAMP = r"(?i:&amp;)"
SPPUNC = r"(?i:&(HT|TL|UR|LR|QC|QL|QR|odq|cdq|#[0-9]+);)"
SPLET = r"&[aeiouAEIOU](?i:acute|grave|uml);"
SPACE = r"[ \t\u00A0\u2000-\u200A\u3000]"
SPACES = SPACE + "+"
NEWLINE = r"(?:\r|\r?\n|\u2028|\u2029|\u000B|\u000C|\u0085)"
SPACENL = f"(?:{SPACE}|{NEWLINE})"
SENTEND = f"{SPACENL}(?:{SPACENL}|[A-Z]|{SGML})"
DATE = f"{DIGIT}{{1,2}}[\\-\\/]{DIGIT}{{1,2}}[\\-\\/]{DIGIT}{{2,4}}"
NUM = f"(?:{DIGIT}+|{DIGIT}*(?:[.:,\\u00AD\\u066B\\u066C]{DIGIT}+)+)"
NUMBER = f"[\\-+]?{NUM}"
SUBSUPNUM = r"[\u207A\u207B\u208A\u208B]?(?:[\u2070\u00B9\u00B2\u00B3\u2074-\u2079]+|[\u2080-\u2089]+)"
FRAC = f"(?:{DIGIT}{{1,4}}[- \\u00A0])?{DIGIT}{{1,4}}(?:\\\\?\\/|\\u2044){DIGIT}{{1,4}}"
FRAC2 = r"[\u00BC\u00BD\u00BE\u2153-\u215E]"
DOLSIGN = r"(?:[A-Z]*\$|#)"
DOLSIGN2 = r"[\u00A2\u00A3\u00A4\u00A5\u0080\u20A0\u20AC\u060B\u0E3F\u20A4\uFFE0\uFFE1\uFFE5\uFFE6]"
WORD = (f"(?:{LETTER}|{SPLET}|[\\u00AD\\u0237-\\u024F\\u02C2-\\u02C5\\u02D2-\\u02DF\\u02E5-\\u02FF"
        r"\u0300-\u036F\u0370-\u037D\u0384\u0385\u03CF\u03F6\u03FC-\u03FF\u0483-\u0487\u04CF\u04F6-\u04FF"
        r"\u0510-\u0525\u055A-\u055F\u0591-\u05BD\u05BF\u05C1\u05C2\u05C4\u05C5\u05C7\u0615-\u061A"
        r"\u063B-\u063F\u064B-\u065E\u0670\u06D6-\u06EF\u06FA-\u06FF\u070F\u0711\u0730-\u074F\u0750-\u077F"
        r"\u07A6-\u07B1\u07CA-\u07F5\u07FA\u0900-\u0903\u093C\u093E-\u094E\u0951-\u0955\u0962-\u0963"
        r"\u0981-\u0983\u09BC-\u09C4\u09C7\u09C8\u09CB-\u09CD\u09D7\u09E2\u09E3\u0A01-\u0A03\u0A3C"
        r"\u0A3E-\u0A4F\u0A81-\u0A83\u0ABC-\u0ACF\u0B82\u0BBE-\u0BC2\u0BC6-\u0BC8\u0BCA-\u0BCD\u0C01-\u0C03"
        r"\u0C3E-\u0C56\u0D3E-\u0D44\u0D46-\u0D48\u0E30-\u0E3A\u0E47-\u0E4E\u0EB1-\u0EBC\u0EC8-\u0ECD])+")
APOS = r"(?:['\u0092\u2019]|(?i:&apos;))"
APOSETCETERA = f"(?:{APOS}|[\\u0091\\u2018\\u201B])"
HYPHEN = r"[-_\u058A\u2010\u2011]"
LD = f"(?:{LETTER}|{DIGIT})"
THING = f"(?:[dDoOlL]{APOSETCETERA}{LD})?{LD}+(?:{HYPHEN}(?:[dDoOlL]{APOSETCETERA}{LD})?{LD}+)*"
THINGA = f"[A-Z]+(?:(?:[+&]|{SPAMP})[A-Z]+)+"
THING3 = r"[A-Za-z0-9]+(?:-[A-Za-z]+){0,2}(?:\\?\/[A-Za-z0-9]+(?:-[A-Za-z]+){0,2}){1,2}"
ACRO = r"(?:[A-Za-z](?:\.[A-Za-z])+|(?i:(?:Canada|Sino|Korean|EU|Japan|non)-U\.S|U\.S\.-(?:U\.K|U\.S\.S\.R)))"
HTHING = f"[A-Za-z0-9][A-Za-z0-9.,\\u00AD]*(?:-(?:[A-Za-z0-9\\u00AD]+|{ACRO}\\.))+"
REDAUX = f"{APOS}(?:[msdMSD]|(?i:re|ve|ll))"
SWORD = r"[A-Za-z\u00AD]*[A-MO-Za-mo-z]\u00AD*"
SREDAUX = f"(?i:n){APOSETCETERA}(?i:t)"
APOWORD = (f"(?:{APOS}(?i:n){APOS}?|[lLdDjJ]{APOS}|(?i:Dunkin){APOS}|(?i:somethin){APOS}|(?i:ol){APOS}"
           f"|{APOS}(?i:em)|[A-HJ-XZn]{APOSETCETERA}{LETTER}{{2}}{LETTER}*|{APOS}[2-9]0(?i:s)|{APOS}(?i:till?)"
           f"|{LETTER}{LETTER}*[aeiouyAEIOUY]{APOSETCETERA}[aeiouA-Z]{LETTER}*|{APOS}(?i:cause)|(?i:cont'd\\.?)"
           r"|(?i:'twas|nor'easter|c'mon|e'er|s'mores|ev'ry|li'l|nat'l))")
APOWORD2 = f"(?i:y){APOS}"
FULLURL = r"(?i:https?:\/\/)[^ \t\n\f\r\"<>|()]+[^ \t\n\f\r\"<>|.!?(){},-]"
LIKELYURL = (r"(?:(?:(?i:www)\.(?:[^ \t\n\f\r\"<>|.!?(){},]+\.)+[a-zA-Z]{2,4})"
             r"|(?:(?:[^ \t\n\f\r\"`'<>|.!?(){},-_$]+\.)+"
             r"(?i:com|net|org|edu)))(?:\/[^ \t\n\f\r\"<>|()]+[^ \t\n\f\r\"<>|.!?(){},-])?")
EMAIL = r"[a-zA-Z0-9][^ \t\n\f\r\"<>|()\u00A0]*@(?:[^ \t\n\f\r\"<>|().\u00A0]+\.)*(?:[^ \t\n\f\r\"<>|().\u00A0]+)"
TWITTER = f"(?:@[a-zA-Z_][a-zA-Z_0-9]*|#{WORD})"
ABMONTH = "Jan|Feb|Mar|Apr|Jun|Jul|Aug|Sep|Sept|Oct|Nov|Dec"
ABDAYS = "Mon|Tue|Tues|Wed|Thu|Thurs|Fri"
ABSTATE = (r"(?i:Ala|Ariz)|[A](?i:rk)|(?i:Calif|Colo|Conn|Dak|Del|Fla|Ga)|[I](?i:ll)|(?i:Ind|Kans?|Ky|La)|[M](?i:ass)"
           r"|(?i:Md|Mich|Minn)|[M](?i:iss)|(?i:Mo|Mont|Neb|Nev|Okla)|[O](?i:re)|(?i:Pa|Penn|Tenn|Tex|Va|Vt)|[W](?i:ash)"
           r"|(?i:Wisc?|Wyo)")
ABTITLE = (r"(?i:Mr|Mrs|Ms)|[M](?i:iss)|(?i:Drs?|Profs?|Sens?|Reps?|Attys?|Lt|Col|Gen|Messrs|Govs?|Adm|Rev|Maj|Sgt"
           r"|Cpl|Pvt|Mt"
           r"|Capt|Ste?|Ave|Pres|Lieut|Hon|Brig|Co?mdr|Pfc|Spc|Supts?|Det)")
ABPTIT = r"(?i:Jr|Sr|Bros|(?:Ed|Ph)\.D|Blvd|Rd|Esq)"
ABCOMP = r"(?i:Inc|Cos?|Corp|Pp?tys?|Ltd|Plc|Bancorp|Dept|Bhd|Assn|Univ|Intl|Sys)"
ABCOMP2 = r"(?i:Invt|Elec|Natl|M[ft]g)"
ABNUM = r"(?i:Ph|tel|est|ext|sq|ft)"  # 3.4.1 jar: No./Nos./Prop. only before a number (rule below)
ABBREV1 = f"(?:(?i:{ABMONTH}|{ABDAYS})|{ABSTATE}|{ABCOMP}|{ABNUM}|{ABPTIT}|(?i:etc|al|seq))\\."
ABBREV4 = f"(?:[A-Za-z]|{ABTITLE}|(?i:vs|Alex|Wm|Jos|Cie|a\\.k\\.a|cf|TREAS)|{ACRO}|{ABCOMP2})"
ABBREV2 = f"{ABBREV4}\\."
ACRONYM = f"{ACRO}\\."
PHONE = (r"(?:(?:\([0-9]{2,3}\)[ \u00A0]?|(?:\+\+?)?(?:[0-9]{2,4}[\- \u00A0])?[0-9]{2,4}[\- \u00A0])"
         r"[0-9]{3,4}[\- \u00A0]?"
         r"[0-9]{3,5}|(?:(?:\+\+?)?[0-9]{2,4}\.)?[0-9]{2,4}\.[0-9]{3,4}\.[0-9]{3,5})")
LDOTS = r"(?:\.{3,5}|(?:\.[ \u00A0]){2,4}\.|[\u0085\u2026])"
INSENTP = r"[,;:\u3001]"
QUOTES = (f"(?:{APOS}|''|[`\\u2018\\u2019\\u201A\\u201B\\u201C\\u201D\\u0091\\u0092\\u0093\\u0094"
          "\\u201E\\u201F\\u2039\\u203A\\u00AB\\u00BB]{1,2})")
DBLQUOT = r"(?:\"|(?i:&quot;))"
TBSPEC = (r"(?i:-(?:RRB|LRB|RCB|LCB|RSB|LSB)-|C\.D\.s|pro-|anti-|S(?:&|&amp;)P-500|S(?:&|&amp;)Ls)"
          f"|(?i:Cap){APOS}(?i:n)|(?i:c){APOS}(?i:est)")
TBSPEC2 = f"{APOS}[0-9][0-9]"
MISCSYMBOL = (r"[+%&~\^|\\¦\u00A7¨\u00A9\u00AC\u00AE¯\u00B0-\u00B3\u00B4-\u00BA\u00D7\u00F7\u0387"
              r"\u05BE\u05C0\u05C3\u05C6"
              r"\u05F3\u05F4\u0600-\u0603\u0606-\u060A\u060C\u0614\u061B\u061E\u066A\u066D\u0703-\u070D\u07F6\u07F7"
              r"\u07F8\u0964\u0965\u0E4F\u1FBD\u2016\u2017\u2020-\u2023\u2030-\u2038\u203B\u203E-\u2042\u2044"
              r"\u207A-\u207F\u208A-\u208E\u2100-\u214F\u2190-\u21FF\u2200-\u2BFF\u3012\u30FB\uFF01-\uFF0F"
              r"\uFF1A-\uFF20\uFF3B-\uFF40\uFF5B-\uFF65\uFF65]")
SMILEY = r"[<>]?[:;=][\-o\*']?[\(\)DPdpO\\{@\|\[\]]"
ACRO_FOLLOW = (r"(?:[A]bout|[A]ccording|[A]dditionally|[A]fter|[A]n|[A]|[A]s|[A]t|[B]ut|[E]arlier|[H]e|[H]er|[H]ere"
               r"|[H]owever|[I]f|[I]n|[I]t|[L]ast|[M]any|[M]ore|[M]r\.|[M]s\.|[N]ow|[O]nce|[O]ne|[O]ther|[O]ur|[S]he"
               r"|[S]ince|[S]o|[S]ome|[S]uch|[T]hat|[T]he|[T]hen|[T]here|[T]hese|[T]hey|[T]his|[W]e|[W]hen|[W]hile"
               r"|[W]hat|[Y]et|[Y]ou)")

# ------------------------------------------------------------------ token actions

# A rule's action: a function from the matched text to the token, or one of
# "skip" (whitespace, untokenizable: no token), "newline" (-preserveLines: a caption boundary),
# "acro_end"/"abbrev_end" (a sentence-final acronym/abbreviation keeps its period and the period is
# returned again as its own token: "U.S. The" -> "U.S." "."), "letter_end" (a single letter loses its
# period: "C. The" -> "C" ".").
Action = Callable[[str], str] | str


def _latex_quotes(tok: str, left: bool) -> str:
    """PTBLexer's quote normalisation (LaTeX style: `` and '')."""
    if left:
        tok = regex.sub(r"(?i:&apos;)|'", "`", tok)
        tok = regex.sub(r"\"|(?i:&quot;)", "``", tok)
    else:
        tok = regex.sub(r"(?i:&apos;)|'", "'", tok)
        tok = regex.sub(r"\"|(?i:&quot;)", "''", tok)
    tok = regex.sub("[\u0091\u2018\u201B\u2039]", "`", tok)
    tok = regex.sub("[\u0092\u2019\u203A]", "'", tok)
    tok = regex.sub("[\u0093\u201C\u00AB]", "``", tok)
    tok = regex.sub("[\u0094\u201D\u00BB]", "''", tok)
    return tok


def _left_quote(tok: str) -> str:
    return _latex_quotes(tok, True)


def _right_quote(tok: str) -> str:
    return _latex_quotes(tok, False)


def _currency(tok: str) -> str:
    return regex.sub("[\u0080\u00A4\u20A0\u20AC]", "$", tok.replace("\u00A2", "cents").replace("\u00A3", "#"))


def _soft(tok: str) -> str:
    """Soft hyphens vanish (a token of soft hyphens alone becomes "-")."""
    out = tok.replace("\u00AD", "")
    return out if out else "-"


def _same(tok: str) -> str:
    return tok


def _amp(tok: str) -> str:
    return regex.sub(r"(?i:&amp;)", "&", tok)


def _nbsp(tok: str) -> str:
    """Tokens that may hold spaces (SGML tags, "1 1/2", phone numbers) get no-break spaces."""
    return tok.replace(" ", "\u00A0")


def _phone(tok: str) -> str:
    return _nbsp(tok).replace("(", "-LRB-").replace(")", "-RRB-")


# U+2154 maps to nothing in the 3.4.1 jar (a Java bug), so it stays as is.
_FRACS = {"\u00BC": "1/4", "\u00BD": "1/2", "\u00BE": "3/4", "\u2153": "1/3"}

# The scanner's rules in PTBLexer.flex order (ties go to the earlier rule): (main pattern,
# trailing-context pattern or None, action, pushback).  An action maps the matched text to the
# token or is one of the special actions below; "pushback" hands that many characters of the main
# match back to the input (JFlex ``yypushback``), e.g. "cannot" -> "can" + "not".
_RULES: list[tuple[str, str | None, Action, int]] = [
    (r"(?i:cannot)", None, _same, 3),
    (r"(?i:gonna|gotta|lemme|gimme|wanna)", None, _same, 2),  # 3.4.1 jar: gon na, got ta, lem me, ...
    (r"(?i:c\+\+|c#|f#)", None, _same, 0),  # 3.4.1 jar: C++ C# F# are words
    (f"{WORD}(?:\\.{WORD})+", None, _soft, 0),  # 3.4.1 jar: dotted words (file.txt, it.He, Mr.Smith)
    (r"(?i:Nos?|Prop)\.", f"{SPACE}*{DIGIT}", _same, 0),  # 3.4.1 jar: "No. 5" but "said no ."
    (SGML, None, _nbsp, 0),
    (SPMDASH, None, lambda t: "--", 0),
    (SPAMP, None, _amp, 0),
    (SPPUNC, None, _same, 0),
    (WORD, REDAUX, _soft, 0),
    (SWORD, SREDAUX, _soft, 0),
    (WORD, None, _soft, 0),
    (r"(?i:'t)", r"(?i:is|was)", _same, 0),  # 3.4.1 jar: 'Tis -> 't is (not in the public .flex)
    (APOWORD, None, _same, 0),
    (APOWORD2, LETTER, _same, 0),
    (FULLURL, None, _same, 0),
    (LIKELYURL, None, _same, 0),
    (EMAIL, None, _same, 0),
    (TWITTER, None, _same, 0),
    (REDAUX, r"[^A-Za-z]", _right_quote, 0),
    (SREDAUX, None, _right_quote, 0),
    (DATE, None, _same, 0),
    (NUMBER, None, _soft, 0),
    (SUBSUPNUM, None, _same, 0),
    (FRAC, None, _nbsp, 0),
    (FRAC2, None, lambda t: _FRACS.get(t, t), 0),
    (TBSPEC, None, _amp, 0),
    (THING3, None, _same, 0),
    (DOLSIGN, None, _same, 0),
    (DOLSIGN2, None, _currency, 0),
    # 3.4.1 jar: the look-ahead crosses newlines ({SPACENL}); a multi-letter acronym keeps its period
    # and gets an extra "." ("U.S. The" -> U.S. . The); a single letter loses it ("C. The" -> C . The).
    (ACRONYM, f"{SPACENL}+{ACRO_FOLLOW}{SPACENL}", "acro_end", 0),
    (r"[A-Za-z]\.", f"{SPACENL}+{ACRO_FOLLOW}{SPACENL}", "letter_end", 0),
    (SMILEY, r"[^A-Za-z]", lambda t: t.replace("(", "-LRB-").replace(")", "-RRB-"), 0),  # 3.4.1 jar
    (ABBREV1, SENTEND, "abbrev_end", 0),
    (ABBREV1, None, _same, 0),
    (ABBREV2, None, _same, 0),
    (ABBREV4, SPACE, _same, 0),
    (ACRO, SPACENL, _same, 0),
    (TBSPEC2, SPACENL, _same, 0),
    (f"{WORD}\\.", INSENTP, _soft, 0),
    (PHONE, None, _phone, 0),
    (DBLQUOT, r"[A-Za-z0-9$]", _left_quote, 0),
    (DBLQUOT, None, _right_quote, 0),
    ("\x7f", None, "skip", 0),
    (r"\[", None, lambda t: "-LSB-", 0),  # 3.4.1 jar: [ ] -> -LSB- -RSB-; < > &lt; &gt; left alone
    (r"\]", None, lambda t: "-RSB-", 0),
    (r"[<>]|(?i:&lt;|&gt;)", None, _same, 0),
    (r"\{", None, lambda t: "-LCB-", 0),
    (r"\}", None, lambda t: "-RCB-", 0),
    (r"\(", None, lambda t: "-LRB-", 0),
    (r"\)", None, lambda t: "-RRB-", 0),
    (r"\-+", None, lambda t: "--" if 3 <= len(t) <= 4 else t, 0),
    (LDOTS, None, lambda t: "...", 0),
    (r"(?:@+|#+|_+)", None, _same, 0),
    (r"(?:\*+|(?:\\\*){1,3})", None, _same, 0),
    (INSENTP, None, _same, 0),
    (r"[?!]+", None, _same, 0),
    ("[.¡¿\u037E\u0589\u061F\u06D4\u0700-\u0702\u07FA\u3002]", None, _same, 0),
    ("=", None, _same, 0),
    (r"\/", None, _same, 0),
    (f"{HTHING}\\.", INSENTP, _soft, 0),
    (HTHING, None, _soft, 0),
    (f"{THING}\\.", INSENTP, _same, 0),
    (THING, None, _same, 0),
    (f"{THINGA}\\.", INSENTP, _amp, 0),
    (THINGA, None, _amp, 0),
    ("'", r"[A-Za-z][^ \t\n\r\u00A0]", _left_quote, 0),
    (REDAUX, None, _right_quote, 0),
    (QUOTES, None, _right_quote, 0),
    (r"<<|>>", None, _same, 0),
    (MISCSYMBOL, None, _same, 0),
    (f"(?:\\x00|{SPACES}|[\\u200B\\u200E-\\u200F\\uFEFF])", None, "skip", 0),
    (NEWLINE, None, "newline", 0),  # -preserveLines: a line break in the output
    (r"(?i:&nbsp;)", None, "skip", 0),
    (r"(?s:.)", None, "skip", 0),  # untokenizable: deleted (default untokenizable=firstDelete)
]


# ------------------------------------------------------------------ compiling the rules


def _caseless(pattern: str) -> str:
    """Expand every ``(?i:...)`` group into explicit ``[xX]`` classes.

    Mirrors JFlex, where ``%caseless`` never touches ``[...]`` classes, and works around a ``regex``
    bug with a scoped ``(?i:)`` next to negated classes.
    """
    out, i = [], 0
    while i < len(pattern):
        if not pattern.startswith("(?i:", i):
            out.append(pattern[i])
            i += 1
            continue
        depth, j, in_class = 1, i + 4, False
        while depth:
            c = pattern[j]
            if c == "\\":
                j += 2
                continue
            if in_class:
                in_class = c != "]"
            elif c == "[":
                in_class = True
            elif c == "(":
                depth += 1
            elif c == ")":
                depth -= 1
            j += 1
        out.append("(?:" + _both_cases(pattern[i + 4 : j - 1]) + ")")
        i = j
    return "".join(out)


def _both_cases(pattern: str) -> str:
    """ASCII letters outside classes -> ``[xX]``."""
    out, i, in_class = [], 0, False
    while i < len(pattern):
        c = pattern[i]
        if c == "\\":
            out.append(pattern[i : i + 2])
            i += 2
            continue
        if in_class:
            in_class = c != "]"
        elif c == "[":
            in_class = True
        elif c.isascii() and c.isalpha():
            c = f"[{c.lower()}{c.upper()}]"
        out.append(c)
        i += 1
    return "".join(out)


_Compiled = tuple[regex.Pattern[str], Action, int]


@lru_cache(maxsize=1)
def _compiled() -> list[_Compiled]:
    """The compiled rules (a fraction of a second, so on first use rather than at import)."""
    return [
        (
            regex.compile(_caseless(f"(?P<m>{main})" + (f"(?P<t>{trail})" if trail else "")), regex.POSIX | regex.V0),
            action,
            pushback,
        )
        for main, trail, action, pushback in _RULES
    ]


@lru_cache(maxsize=1 << 16)
def _candidates(prefix: str) -> tuple[int, ...]:
    """The rules that can match text starting with ``prefix`` (its next one or two characters).

    A partial match on the prefix alone answers "could a match begin like this?", so the scanner
    tries about 3 of the 75 rules at a space and 10-20 inside a word instead of all of them: the
    same tokens, several times faster.
    """
    return tuple(k for k, (rx, _, _) in enumerate(_compiled()) if rx.match(prefix, partial=True) is not None)


# JFlex 1.4 lexes UTF-16 code units: a supplementary character is two surrogates that only the
# catch-all rule matches, i.e. it is deleted and splits a token.
_ASTRAL = regex.compile(r"[\U00010000-\U0010FFFF]")
_SURROGATE_PAIR = regex.compile(r"[\uD800-\uDBFF][\uDC00-\uDFFF]")


def _to_surrogates(c: str) -> str:
    v = ord(c) - 0x10000
    return chr(0xD800 + (v >> 10)) + chr(0xDC00 + (v & 0x3FF))


def _from_surrogates(text: str) -> str:
    text = _SURROGATE_PAIR.sub(
        lambda m: chr(0x10000 + ((ord(m.group()[0]) - 0xD800) << 10) + ord(m.group()[1]) - 0xDC00), text
    )
    return regex.sub(r"[\uD800-\uDFFF]", "\uFFFD", text)  # half a pair cannot be printed (Java prints "?")


# ------------------------------------------------------------------ scanning


def _lex(text: str) -> list[str]:
    """Raw PTBLexer tokens of ``text`` (not lowercased, punctuation kept); "\\n" marks a line break."""
    rules = _compiled()
    s = _ASTRAL.sub(lambda m: _to_surrogates(m.group()), text)  # the UTF-16 view Java has
    out: list[str] = []
    pos, n = 0, len(s)
    while pos < n:
        best_total, best_main, best_rule = 0, 0, -1
        for k in _candidates(s[pos : pos + 2]):
            m = rules[k][0].match(s, pos)
            if m is not None and m.end() - pos > best_total:  # ties keep the earlier rule
                best_total, best_main, best_rule = m.end() - pos, m.end("m") - pos, k
        if best_rule < 0:  # unreachable: the catch-all rule matches any character
            pos += 1
            continue
        _, action, pushback = rules[best_rule]
        token = s[pos : pos + best_main - pushback]
        pos += best_main - pushback
        if action == "skip":
            continue
        if action == "newline":
            out.append("\n")
        elif action == "letter_end":
            out.extend([token[:-1], "."])
        elif action in ("acro_end", "abbrev_end"):
            out.extend([token, "."])  # yypushback(1): the period comes back as its own token
        elif callable(action):
            result = action(token)
            if result:
                out.append(_from_surrogates(result) if max(result) >= "\ud800" else result)
    return out


# ------------------------------------------------------------------ public API

_LINE_BREAKS = regex.compile("[\n\r\u000B\u000C\u2028\u2029]")


def ptb_tokenize_lines(captions: Sequence[str]) -> list[str]:
    """One pycocoevalcap ``PTBTokenizer().tokenize`` call: one space-joined token string per caption.

    The captions (in the order pycocoevalcap iterates them: image by image, caption by caption) are
    joined by newlines into one stream and lexed at once, so a caption's last token sees the next
    caption as JFlex's trailing context does; then split back into lines, lowercased, and the
    ``PUNCTUATIONS`` tokens dropped.  Line breaks inside a caption become spaces first: pycocoevalcap
    does so for "\\n" but not for "\\r", U+2028, U+2029, VT or FF, which the Java lexer also ends a
    line on, so there every later caption would be paired with the wrong image.
    """
    stream = "\n".join(_LINE_BREAKS.sub(" ", c) for c in captions)
    lines: list[list[str]] = [[]]
    for token in _lex(stream):
        if token == "\n":
            lines.append([])
        else:
            lines[-1].append(token)
    return [" ".join(w for w in (t.lower() for t in line) if w not in _PUNCT) for line in lines[: len(captions)]]


def ptb_tokenize(text: str) -> str:
    """pycocoevalcap's tokens for one caption, as a tokenize call holding only this caption gives them."""
    return ptb_tokenize_lines([text])[0]
