"""Credentials whose issuer gave them a fixed prefix or shape: one rule per kind, found anywhere.

    from core.secret_rules import SHAPED
    for kind, literals, pattern in SHAPED: ...   # literals gate the regex (None: it starts with one)

A match is replaced whole, or only its group "v" when the regex has one; `core.redaction`
applies them, and skips a match glued to a preceding letter or digit (part of a longer word).
The shapes follow the issuers' documentation (and gitleaks' rules, which collect them); each kind
has a planted example in tests/secrets_corpus.py. A regex that starts with a literal is scanned
for as fast as `in` would; the others name the literals (or a regex that starts with one) that must
occur for them to run.
"""

from __future__ import annotations

import re

_PEM = r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----"
_B = r"(?<![A-Za-z0-9_-])"  # not inside a longer word or a `cache-key-...` name

SHAPED: list[tuple[str, tuple[str, ...] | re.Pattern[str] | None, re.Pattern[str]]] = [
    # the lookahead wants key material next (after blanks, a JSON `\n`, quotes, a diff's `+`/`-`, `Version:`
    # header lines), so code that merely names the header stays; each part of it can match one way
    # only, so it takes linear time
    ("PRIVATE_KEY", None, re.compile(
        _PEM + r"(?=(?:[\s+\-\"']|\\n)*(?:[A-Z][A-Za-z-]+:[^\n]*\n(?:[\s+\-\"']|\\n)*)*[A-Za-z0-9+/]{32})[\s\S]*?"
        r"(?:-----END (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----|\Z)")),
    ("AGE_KEY", None, re.compile(r"AGE-SECRET-KEY-1[02-9AC-HJ-NP-Z]{58}")),
    ("GITHUB_TOKEN", None, re.compile(r"(?:gh[pousr]_[A-Za-z0-9]{36,255}|github_pat_[A-Za-z0-9_]{22,255})")),
    ("GITLAB_TOKEN", None, re.compile(r"gl(?:pat|dt|rt|ptt|soat|cbt)-[A-Za-z0-9_\-]{20,}")),
    ("SLACK_TOKEN", None, re.compile(r"xox[baprse]-[A-Za-z0-9-]{10,}|xapp-\d-[A-Z0-9]+-\d+-[a-z0-9]{32,}")),
    ("SLACK_WEBHOOK", None, re.compile(
        r"hooks\.slack\.com/(?:services|workflows)/[A-Za-z0-9_]{8,}/[A-Za-z0-9_]{8,}/[A-Za-z0-9_]{16,}")),
    ("DISCORD_WEBHOOK", ("/api/webhooks/",), re.compile(
        r"discord(?:app)?\.com/api/webhooks/\d{15,20}/(?P<v>[A-Za-z0-9_-]{60,70})")),
    # a bot token: the bot's id in base64 (it starts M, N or O), a timestamp, an HMAC
    ("DISCORD_TOKEN", re.compile(r"\.[A-Za-z0-9_-]{6}\.[A-Za-z0-9_-]{27}"), re.compile(
        r"(?<![A-Za-z0-9_.-])[MNO][A-Za-z0-9_-]{23,27}\.[A-Za-z0-9_-]{6}\.[A-Za-z0-9_-]{27,38}(?![A-Za-z0-9_-])")),
    ("TELEGRAM_BOT_TOKEN", (":AA",), re.compile(r"(?<![0-9])\d{8,10}:AA[0-9A-Za-z_-]{33}(?![0-9A-Za-z_-])")),
    ("STRIPE_KEY", ("k_live_", "k_test_"), re.compile(r"[sr]k_(?:live|test)_[A-Za-z0-9]{16,}")),
    ("SQUARE_TOKEN", ("sq0", "EAAA"), re.compile(r"sq0(?:atp|csp)-[A-Za-z0-9_-]{22,43}|EAAA[A-Za-z0-9_-]{60}")),
    ("GOOGLE_API_KEY", None, re.compile(r"AIza[0-9A-Za-z_\-]{35}")),
    ("GOOGLE_OAUTH_SECRET", None, re.compile(r"GOCSPX-[A-Za-z0-9_\-]{28}")),
    ("AZURE_STORAGE_KEY", ("ccountKey", "ccessKey="), re.compile(
        r"(?i:AccountKey|SharedAccessKey)\s*=\s*(?P<v>[A-Za-z0-9+/]{40,}={0,2})")),
    ("AZURE_CLIENT_SECRET", ("Q~",), re.compile(r"[A-Za-z0-9_~.\-]{3}\dQ~[A-Za-z0-9_~.\-]{31,34}")),
    ("ALIBABA_KEY", None, re.compile(r"LTAI[A-Za-z0-9]{20}(?![A-Za-z0-9])")),
    ("JWT", None, re.compile(r"eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}")),
    ("NPM_TOKEN", None, re.compile(r"npm_[A-Za-z0-9]{36}")),
    ("PYPI_TOKEN", None, re.compile(r"pypi-AgE[A-Za-z0-9_-]{50,}")),
    ("RUBYGEMS_TOKEN", None, re.compile(r"rubygems_[a-f0-9]{48}")),
    ("DOCKERHUB_TOKEN", None, re.compile(r"dckr_pat_[A-Za-z0-9_-]{27}")),
    ("OPENAI_KEY", None, re.compile(
        r"sk-(?:(?:proj|svcacct|admin)-[A-Za-z0-9_-]{40,}|[A-Za-z0-9]{20}T3BlbkFJ[A-Za-z0-9]{20})")),
    ("ANTHROPIC_KEY", None, re.compile(r"sk-ant-[a-z]+\d\d-[A-Za-z0-9_-]{80,}")),
    ("GROQ_KEY", None, re.compile(r"gsk_[A-Za-z0-9]{52}")),
    ("HUGGINGFACE_TOKEN", None, re.compile(r"hf_[A-Za-z]{34,}")),
    ("SENDGRID_KEY", None, re.compile(r"SG\.[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]{43}")),
    ("MAILGUN_KEY", ("key-",), re.compile(_B + r"key-[0-9a-f]{32}(?![A-Za-z0-9])")),
    ("MAILCHIMP_KEY", re.compile(r"-us\d"), re.compile(_B + r"[0-9a-f]{32}-us\d{1,2}(?![A-Za-z0-9])")),
    ("TWILIO_KEY", None, re.compile(r"SK[0-9a-f]{32}(?![A-Za-z0-9])")),
    ("SHOPIFY_TOKEN", None, re.compile(r"shp(?:at|ss|ca|pa)_[a-fA-F0-9]{32}")),
    ("DIGITALOCEAN_TOKEN", None, re.compile(r"do[por]_v1_[a-f0-9]{64}")),
    ("HEROKU_KEY", None, re.compile(r"HRKU-[A-Za-z0-9_-]{60}")),
    ("DATABRICKS_TOKEN", None, re.compile(r"dapi[0-9a-f]{32}(?:-\d)?(?![A-Za-z0-9])")),
    ("ATLASSIAN_TOKEN", None, re.compile(r"AT(?:ATT|CTT)3[A-Za-z0-9_\-=]{150,}")),
    ("SENTRY_DSN", ("sentry", ".ingest."), re.compile(
        r"https?://(?P<v>[0-9a-f]{32}(?::[0-9a-f]{32})?)@(?:o\d+\.ingest\.|[A-Za-z0-9.-]*sentry)")),
    ("SENTRY_TOKEN", None, re.compile(r"sntry[su]_[A-Za-z0-9+/=_]{60,}")),
    ("VAULT_TOKEN", None, re.compile(r"hv[sb]\.[A-Za-z0-9_-]{24,}")),
    ("NEWRELIC_KEY", None, re.compile(r"NRAK-[A-Z0-9]{27}")),
    ("POSTMAN_KEY", None, re.compile(r"PMAK-[a-f0-9]{24}-[a-f0-9]{34}")),
    ("LINEAR_KEY", None, re.compile(r"lin_api_[A-Za-z0-9]{40}")),
    ("GRAFANA_TOKEN", None, re.compile(r"glsa_[A-Za-z0-9]{32}_[a-fA-F0-9]{8}|glc_[A-Za-z0-9+/]{32,400}={0,2}")),
    ("DOPPLER_TOKEN", None, re.compile(r"dp\.(?:pt|st|ct|sa|scim|audit)\.[A-Za-z0-9]{40,44}")),
    ("PULUMI_TOKEN", None, re.compile(r"pul-[a-f0-9]{40}(?![A-Za-z0-9])")),
    ("PLANETSCALE_TOKEN", None, re.compile(r"pscale_(?:tkn|pw|oauth)_[A-Za-z0-9_.-]{32,64}")),
    ("SUPABASE_TOKEN", None, re.compile(r"sbp_[a-f0-9]{40}")),
]

# A legacy Heroku API key is a UUID: only a name that says Heroku makes it one.
HEROKU_NAMED = re.compile(r"(?i)heroku[A-Za-z0-9_.-]*(?:key|token)[\"']?\s*(?:=>|:=|[:=])\s*[\"']?"
                          r"(?P<v>[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})")

# The prefixes the shapes above start with: a token cut short (git cuts a hunk header's context at
# 80 bytes) is still known by its start.
PREFIXES = (
    "ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_", "glpat-", "gldt-", "glrt-", "glptt-", "glsoat-",
    "glcbt-", "xoxb-", "xoxa-", "xoxp-", "xoxr-", "xoxs-", "xoxe-", "xapp-", "sk_live_", "sk_test_",
    "rk_live_", "rk_test_", "sq0atp-", "sq0csp-", "EAAA", "AIza", "GOCSPX-", "AKIA", "ASIA", "LTAI", "eyJ",
    "npm_", "pypi-AgE", "rubygems_", "dckr_pat_", "sk-proj-", "sk-ant-", "sk-svcacct-", "sk-admin-", "gsk_",
    "hf_", "SG.", "key-", "shpat_", "shpss_", "shpca_", "shppa_", "dop_v1_", "doo_v1_", "dor_v1_", "HRKU-",
    "dapi", "ATATT3", "ATCTT3", "sntrys_", "sntryu_", "hvs.", "hvb.", "NRAK-", "PMAK-", "lin_api_", "glsa_",
    "glc_", "dp.pt.", "dp.st.", "dp.ct.", "dp.sa.", "pul-", "pscale_", "sbp_", "AGE-SECRET-KEY-",
)
