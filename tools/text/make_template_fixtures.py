#!/usr/bin/env python3
"""Golden fixtures for ponder's Jinja interpreter and chat templates, rendered by Python's jinja2.

Writes, under tests/data/chat_templates/:
  jinja_cases.json        small templates exercising one construct each, rendered by jinja2 with
                          either jinja2's defaults or transformers' chat-template environment;
  <family>/golden.json    many conversations rendered through each family's real chat template
                          with transformers' own rendering code (render_jinja_template).
and copies the families' tokenizer_config.json from /work/shared/tokenizers (--shared-dir).

The C++ tests (tests/coordinator/text/{jinja,chat_template}_test.cpp) compare against these
files byte for byte; CI never runs Python. Regenerate with:
  /work/refenv/bin/python tools/text/make_template_fixtures.py

Messages are passed to the template as given (a None content stays None). transformers'
tokenizer.apply_chat_template additionally drops None-valued message keys before rendering; ponder
does not, because templates such as DeepSeek-V3's test `content is none` to render tool calls.
"""

import argparse
import datetime
import json
import pathlib
import shutil
import sys

import jinja2
import jinja2.ext
import jinja2.sandbox
import transformers
from transformers.utils import chat_template_utils as hf

REPO = pathlib.Path(__file__).resolve().parents[2]
OUT_DIR = REPO / "tests" / "data" / "chat_templates"
SHARED_FAMILIES = ("llama3", "qwen3", "deepseek_v3")
# Fixed clock for strftime_now() in the construct cases (the C++ test injects the same time).
FIXED_NOW = datetime.datetime(2024, 7, 26, 13, 45, 7)
SPECIAL_TOKEN_KEYS = ("bos_token", "eos_token", "unk_token", "sep_token", "pad_token",
                      "cls_token", "mask_token")


# ----------------------------------------------------------------------------- construct cases

def construct_cases():
    """(name, template, variables, env) tuples; env is 'hf' or a dict of jinja2 options."""
    plain = {"trim_blocks": False, "lstrip_blocks": False}
    trim = {"trim_blocks": True, "lstrip_blocks": False}
    lstrip = {"trim_blocks": False, "lstrip_blocks": True}
    both = {"trim_blocks": True, "lstrip_blocks": True}
    msgs = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hi <there> & 'you'"},
        {"role": "assistant", "content": "Hello!", "tool_calls": None},
    ]
    tool = {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Weather for a city, e.g. \"Zürich\" <b>now</b> & later",
            "parameters": {"type": "object", "properties": {
                "city": {"type": "string"}, "days": {"type": "integer", "minimum": 1}},
                "required": ["city"]},
        },
    }
    v = {"msgs": msgs, "tool": tool, "n": 7, "f": 2.5, "s": "  Hello World  ", "e": "",
         "xs": [3, 1, 2], "words": ["b", "A", "a", "c"], "d": {"b": 1, "a": [1, 2], "c": None},
         "uni": "héllo wörld – 中文 😀", "t": True, "nil": None, "big": 12345678901234}
    cases = []

    def add(name, template, env=plain, variables=None):
        cases.append((name, template, v if variables is None else variables, env))

    # Output and str() of values.
    add("print_scalars", "{{ n }}|{{ f }}|{{ t }}|{{ nil }}|{{ big }}|{{ 1e16 }}|{{ 1e15 }}|{{ 0.00001 }}|{{ -0.0 }}")
    add("print_containers", "{{ xs }}|{{ d }}|{{ (1,) }}|{{ (1, 'a') }}|{{ [] }}|{{ {} }}|{{ [none, true, 'it\\'s', \"q\\\"\"] }}")
    add("print_repr_escapes", "{{ ['a\\nb', 'tab\\there', 'back\\\\slash', '\\x01', 'é', '\\u00a0', '\\u200b'] }}")
    add("print_undefined", "[{{ missing }}][{{ d.missing }}][{{ msgs[10] }}][{{ nil.attr }}]")
    add("arithmetic", "{{ 7 // 2 }} {{ -7 // 2 }} {{ -7 % 3 }} {{ 7 % -3 }} {{ 7 / 2 }} {{ 10 / 2 }} {{ 2 ** 10 }} {{ 2 ** -1 }} {{ 1 + 2.5 }} {{ 3 * 'ab' }} {{ [1] * 3 }} {{ 5.5 // 2 }} {{ -5.5 % 2 }} {{ true + 1 }}")
    add("precedence", "{{ 1 + 2 * 3 }} {{ (1 + 2) * 3 }} {{ -2 ** 2 }} {{ 2 ** 3 ** 2 }} {{ 1 ~ 2 ~ 3 * 2 }} {{ 'a' ~ 1 == 'a1' }} {{ not true or true }} {{ not (true or true) }} {{ 1 if false else 2 if false else 3 }}")
    add("concat", "{{ 'a' ~ 1 ~ none ~ missing ~ [1] ~ 2.0 }}")
    add("string_plus", "{{ 'a' + 'b' }}{{ [1, 2] + [3] }}")
    add("comparisons", "{{ 1 == 1.0 }} {{ 1 != 2 }} {{ 'a' < 'b' }} {{ [1, 2] < [1, 3] }} {{ 1 < 2 < 3 }} {{ 3 > 2 > 2 }} {{ none == none }} {{ missing == missing }} {{ 'a' == missing }} {{ (1, 2) == [1, 2] }} {{ {'a': 1} == {'a': 1} }}")
    add("membership", "{{ 'ell' in 'hello' }} {{ 2 in xs }} {{ 'a' in d }} {{ 'z' not in d }} {{ 'x' in missing }} {{ 'system' in msgs[0].values() }}")
    add("logic_values", "{{ 0 or 'x' }}|{{ 'a' and 'b' }}|{{ '' and 'b' }}|{{ none or [] }}|{{ missing or 'dflt' }}")
    add("truthiness", "{% for x in [0, 1, '', 'a', [], [0], {}, none, 0.0, missing] %}{{ 'T' if x else 'F' }}{% endfor %}")
    add("ternary_no_else", "[{{ 'yes' if false }}][{{ 'yes' if true }}]")
    add("literals", "{{ 0x1F }} {{ 0o17 }} {{ 0b101 }} {{ 1_000 }} {{ 1.5e3 }} {{ 'a' 'b' \"c\" }} {{ True }} {{ None }} {{ '\\u00e9\\n' }}")
    add("subscripts", "{{ msgs[0]['role'] }} {{ msgs[-1].content }} {{ xs[1] }} {{ xs.0 }} {{ d['a'][1] }} {{ uni[1] }} {{ uni[-1] }}")
    add("slices", "{{ xs[::-1] }} {{ xs[1:] }} {{ xs[:1] }} {{ xs[::2] }} {{ uni[::-1] }} {{ uni[2:5] }} {{ msgs[1:] | length }} {{ 'abcdef'[-2:] }} {{ 'abcdef'[10:] }} {{ (1, 2, 3)[1:] }}")
    add("dict_literal_and_methods", "{% set m = {'k': 1, 'j': [2]} %}{{ m }} {{ m.items() | list }} {{ m.keys() | list }} {{ m.values() | list }} {{ m.get('k') }} {{ m.get('z') }} {{ m.get('z', 5) }}")
    add("for_loop_vars", "{% for x in xs %}{{ loop.index }}{{ loop.index0 }}{{ loop.revindex }}{{ loop.revindex0 }}{{ loop.first }}{{ loop.last }}{{ loop.length }}|{% endfor %}")
    add("for_prev_next", "{% for x in xs %}[{{ loop.previtem }}<{{ x }}>{{ loop.nextitem }}]{% endfor %}")
    add("for_else", "{% for x in [] %}{{ x }}{% else %}empty{% endfor %}{% for x in xs %}{{ x }}{% else %}no{% endfor %}")
    add("for_unpack_items", "{% for k, v in d.items() %}{{ k }}={{ v }};{% endfor %}{% for k, v in d | items %}{{ k }};{% endfor %}{% for (a, b) in [(1, 2), [3, 4]] %}{{ a + b }}{% endfor %}")
    add("for_inline_filter", "{% for x in xs if x > 1 %}{{ x }}:{{ loop.index }}/{{ loop.length }} {% endfor %}")
    add("for_over_dict_and_string", "{% for k in d %}{{ k }}{% endfor %}|{% for c in 'héé' %}[{{ c }}]{% endfor %}")
    add("for_cycle_changed", "{% for x in [1, 1, 2, 2, 3] %}{{ loop.cycle('a', 'b') }}{% if loop.changed(x) %}!{% endif %}{% endfor %}")
    add("for_nested_loop", "{% for a in [1, 2] %}{% for b in 'xy' %}{{ loop.index }}{{ a }}{{ b }} {% endfor %}{{ loop.index }};{% endfor %}")
    add("loop_controls", "{% for x in range(10) %}{% if x == 2 %}{% continue %}{% endif %}{% if x == 5 %}{% break %}{% endif %}{{ x }}{% endfor %}")
    add("for_scoping", "{% set x = 0 %}{% for i in [1, 2] %}[{{ x }}]{% set x = i %}{% endfor %}{{ x }}")
    add("if_scoping", "{% if true %}{% set z = 5 %}{% endif %}{{ z }}")
    add("scope_macro_sees_later_store", "{% macro m() %}[{{ n }}]{% endmacro %}{{ m() }}{% set n = 2 %}{{ m() }}{% if false %}{% set s = 1 %}{% endif %}{% macro q() %}[{{ s }}]{% endmacro %}{{ q() }}")
    add("scope_loop_reads_later_root_store", "{% for i in [1] %}[{{ n }}]{% endfor %}{% set n = 5 %}{{ n }}{% for i in [1] %}[{{ f }}]{% endfor %}")
    add("scope_for_else_and_branches", "{% for x in [] %}{% else %}{% set e = 1 %}{% endfor %}[{{ e }}]{% macro m() %}({{ t }}){% endmacro %}{{ m() }}{% if false %}{% set t = 1 %}{% elif false %}{% set t = 2 %}{% else %}{% set t = 3 %}{% endif %}{{ m() }}{{ t }}")
    add("if_elif_else", "{% for n in [1, 2, 3] %}{% if n == 1 %}one{% elif n == 2 %}two{% else %}many{% endif %} {% endfor %}")
    add("set_tuple_and_block", "{% set a, b = 1, 2 %}{{ a }}{{ b }}{% set blk %}x{{ a }}y{% endset %}[{{ blk }}]{% set up | upper %}shout {{ b }}{% endset %}{{ up }}")
    add("namespace", "{% set ns = namespace(count=0, found=false) %}{% for m in msgs %}{% set ns.count = ns.count + 1 %}{% if m.role == 'user' %}{% set ns.found = true %}{% endif %}{% endfor %}{{ ns.count }} {{ ns.found }}")
    add("namespace_from_dict", "{% set ns = namespace({'a': 1}, b=2) %}{{ ns.a }}{{ ns.b }}{{ ns.c is defined }}")
    add("macro_basic", "{% macro greet(name, punct='!') %}Hello {{ name }}{{ punct }}{% endmacro %}{{ greet('Ann') }} {{ greet('Bob', punct='?') }} {{ greet(name='Cy') }}")
    add("macro_varargs_kwargs", "{% macro m(a) %}{{ a }}{{ varargs }}{{ kwargs }}{% endmacro %}{{ m(1, 2, 3, k='v') }}")
    add("macro_scope_and_recursion", "{% set x = 1 %}{% macro show() %}{{ x }}{% endmacro %}{% set x = 2 %}{{ show() }}{% macro fact(n) %}{% if n <= 1 %}1{% else %}{{ n * fact(n - 1) | int }}{% endif %}{% endmacro %}{{ fact(5) }}")
    add("macro_missing_param", "{% macro m(a, b) %}[{{ a }}][{{ b }}]{% endmacro %}{{ m(1) }}")
    add("call_block", "{% macro wrap(tag) %}<{{ tag }}>{{ caller() }}</{{ tag }}>{% endmacro %}{% call wrap('b') %}inside {{ n }}{% endcall %}")
    add("call_block_with_args", "{% macro each(xs) %}{% for x in xs %}{{ caller(x, loop.index) }}{% endfor %}{% endmacro %}{% call(item, i) each(words) %}[{{ i }}:{{ item }}]{% endcall %}")
    add("generation_tag", "{% for m in msgs %}{% generation %}<{{ m.role }}>{% set inner = 1 %}{% endgeneration %}{% endfor %}[{{ inner }}]", env="hf")
    add("filter_block", "{% filter upper %}quiet {{ n }}{% endfilter %}")
    add("with_block", "{% with a = 1, b = 2 %}{{ a + b }}{% endwith %}[{{ a }}]")
    add("tests", "{{ missing is defined }} {{ n is defined }} {{ nil is none }} {{ n is number }} {{ f is float }} {{ n is integer }} {{ t is integer }} {{ t is boolean }} {{ 'a' is string }} {{ d is mapping }} {{ xs is iterable }} {{ 'a' is iterable }} {{ n is iterable }} {{ missing is iterable }} {{ xs is sequence }} {{ d is sequence }}")
    add("tests_args", "{{ 4 is divisibleby 2 }} {{ 3 is odd }} {{ 3 is even }} {{ 2 is in xs }} {{ 'A' is upper }} {{ 'a' is lower }} {{ n is eq 7 }} {{ n is gt(3) }} {{ n is lt 3 }} {{ n is ne 7 }} {{ nil is sameas none }} {{ t is true }} {{ t is false }} {{ range is callable }} {{ n is not none }} {{ not n is none }}")
    add("filter_trim_case", "[{{ s | trim }}][{{ s | lower }}][{{ s | upper }}][{{ 'hELLO wORLD' | capitalize }}][{{ 'hello world-foo (bar' | title }}][{{ 'xxhixx' | trim('x') }}][{{ uni | upper }}][{{ 'ÀÉÎ straße' | lower }}]")
    add("filter_length_count", "{{ xs | length }} {{ d | count }} {{ uni | length }} {{ missing | length }} {{ '' | length }}")
    add("filter_join_default", "{{ xs | join(', ') }}|{{ words | join }}|{{ msgs | join('/', attribute='role') }}|{{ missing | default('dflt') }}|{{ '' | default('dflt') }}|{{ '' | default('dflt', true) }}|{{ nil | d('x') }}|{{ d.zz | d(7) }}")
    add("filter_first_last_list", "{{ xs | first }} {{ xs | last }} {{ 'abc' | first }} {{ 'abc' | list }} {{ d | list }} {{ [] | first }}|{{ xs | reverse | list }} {{ 'abc' | reverse }}")
    add("filter_sort_unique", "{{ xs | sort }} {{ words | sort }} {{ words | sort(case_sensitive=true) }} {{ words | sort(reverse=true) }} {{ words | unique | list }} {{ words | unique(case_sensitive=true) | list }} {{ msgs | sort(attribute='role') | map(attribute='role') | list }}")
    add("filter_map_select", "{{ msgs | map(attribute='role') | list }} {{ words | map('upper') | list }} {{ msgs | selectattr('role', 'equalto', 'user') | map(attribute='content') | list }} {{ msgs | rejectattr('role', 'eq', 'user') | list | length }} {{ xs | select('odd') | list }} {{ xs | reject('odd') | list }} {{ [0, 1, '', 'a'] | select | list }} {{ msgs | selectattr('tool_calls') | list }} {{ msgs | map(attribute='name', default='anon') | list }}")
    add("filter_numbers", "{{ '42' | int }} {{ '4.7' | int }} {{ 'x' | int }} {{ 'x' | int(9) }} {{ 3.9 | int }} {{ '2.5' | float }} {{ 'x' | float }} {{ 7 | float }} {{ -3 | abs }} {{ 2.567 | round(2) }} {{ 2.5 | round }} {{ 2.1 | round(0, 'ceil') }} {{ xs | sum }} {{ xs | max }} {{ xs | min }} {{ '0x1A' | int(0, 16) }}")
    add("filter_string_misc", "{{ 'a-b-c' | replace('-', '+') }} {{ 'aaa' | replace('a', 'b', 2) }} {{ n | string }} {{ 'x' | safe }} {{ '%s=%d' | format('k', 3) }} {{ 'a<b>&\"' | escape }} {{ 'one two three' | wordcount }} {{ 'abc' | center(9) }}|")
    add("filter_indent", "[{{ 'a\\nb\\n\\nc' | indent }}][{{ 'a\\nb' | indent(2, true) }}][{{ 'a\\n\\nb' | indent('> ', blank=true) }}]")
    add("filter_truncate_batch_dictsort", "{{ 'foo bar baz qux' | truncate(9) }}|{{ 'foo bar baz qux' | truncate(9, true) }}|{{ 'foo bar baz qux' | truncate(11) }}|{{ xs | batch(2) | list }}|{{ d | dictsort }}|{{ {'b': 2, 'A': 1} | dictsort(by='value', reverse=true) }}")
    add("filter_attr_items", "{{ msgs[0] | attr('role') }}|{{ d | items | list }}|{{ missing | items | list }}")
    add("tojson_jinja2_default", "{{ tool | tojson }}|{{ msgs | tojson }}|{{ uni | tojson }}|{{ [1.0, 2.5e-7, true, none] | tojson }}")
    add("tojson_jinja2_indent", "{{ d | tojson(indent=2) }}|{{ {} | tojson(indent=2) }}|{{ [[]] | tojson(2) }}")
    add("tojson_hf", "{{ tool | tojson }}|{{ msgs | tojson }}|{{ uni | tojson }}|{{ [1.0, 2.5e-7, true, none, big] | tojson }}", env="hf")
    add("tojson_hf_options", "{{ tool | tojson(indent=4) }}|{{ d | tojson(sort_keys=true) }}|{{ d | tojson(separators=(',', ':')) }}|{{ uni | tojson(ensure_ascii=true) }}|{{ {'a': {'b': []}} | tojson(indent=2) }}", env="hf")
    add("str_methods_1", "{{ s.strip() }}|{{ s.lstrip() }}|{{ s.rstrip() }}|{{ 'xxhixx'.strip('x') }}|{{ s.upper() }}|{{ s.lower() }}|{{ 'hello world'.title() }}|{{ 'hello-wORLD 3d'.title() }}|{{ 'ab'.capitalize() }}|{{ s.startswith('  He') }}|{{ s.endswith(('x', '  ')) }}")
    add("str_methods_2", "{{ 'a,b,,c'.split(',') }}|{{ ' a  b \\n c '.split() }}|{{ 'a,b,c'.split(',', 1) }}|{{ 'a,b,c'.rsplit(',', 1) }}|{{ ' a b '.rsplit() }}|{{ 'hello'.find('l') }}|{{ 'hello'.rfind('l') }}|{{ 'hello'.find('z') }}|{{ uni.find('中') }}|{{ 'aaa'.replace('a', 'b') }}|{{ 'aaa'.replace('a', 'b', 1) }}|{{ 'abcabc'.count('bc') }}")
    add("str_methods_3", "{{ '{}-{}'.format(1, 'x') }}|{{ '{0}{0}{name}'.format('a', name='b') }}|{{ '{:>5}|{:<4}|{:^7}|{:.2f}|{:05d}'.format('r', 'l', 'c', 3.14159, 42) }}|{{ '-'.join(['a', 'b']) }}|{{ 'a\\nb\\r\\nc'.splitlines() }}|{{ '42'.isdigit() }}|{{ 'ab'.isalpha() }}|{{ 'x=1'.partition('=') }}|{{ '7'.zfill(3) }}|{{ 'ab'.ljust(4, '.') }}|{{ 'ab'.rjust(4) }}")
    add("str_percent_format", "{{ '%s and %s' % ('a', 'b') }}|{{ '%d%%' % 50 }}|{{ '%05.1f' % 3.14159 }}|{{ '%(k)s' % {'k': 'v'} }}|{{ '%-4s|' % 'ab' }}|{{ '%x' % 255 }}|{{ '%r' % 'q' }}")
    add("think_split", "{% set c = '<think>\\nreason\\n</think>\\n\\nanswer' %}{{ c.split('</think>')[-1].lstrip('\\n') }}|{{ c.split('</think>')[0].rstrip('\\n').split('<think>')[-1].lstrip('\\n') }}")
    add("range_and_globals", "{{ range(3) | list }} {{ range(1, 7, 2) | list }} {{ range(5, 0, -2) | list }} {{ dict(a=1, b=2) }} {{ dict([('x', 1)]) }}{% set j = joiner('+') %}|{% for x in xs %}{{ j() }}{{ x }}{% endfor %}")
    add("strftime_now", "{{ strftime_now('%Y-%m-%d %H:%M:%S') }}|{{ strftime_now('%d %b %Y') }}|{{ strftime_now('%A %B %-d') }}", env="hf")
    add("comment_and_raw", "a{# comment #}b{% raw %}{{ not parsed }}{% endraw %}c")
    # Whitespace control.
    ws = "<ul>\n  {% for x in xs %}\n    <li>{{ x }}</li>\n  {% endfor %}\n</ul>\n"
    add("ws_plain", ws, env=plain)
    add("ws_trim_blocks", ws, env=trim)
    add("ws_lstrip_blocks", ws, env=lstrip)
    add("ws_both", ws, env=both)
    add("ws_dash", "a  \n  {%- if true -%}  \n  b  \n  {%- endif %}  c {{- ' d ' -}}  e\n", env=plain)
    add("ws_plus_disables", "x\n    {%+ if true %}y\n    {% endif +%}\nz\n", env=both)
    add("ws_comment_lstrip", "a\n    {# note #}\nb\n  {#- note -#}  \nc", env=both)
    add("ws_trailing_newline", "line\n", env=plain)
    add("ws_trailing_newlines_two", "line\n\n", env=plain)
    add("ws_crlf", "a\r\n{% if true %}\r\nb\r\n{% endif %}\r\nc", env=both)
    add("ws_variable_not_lstripped", "a\n    {{ 'v' }}\n  {% if true %}x{% endif %}\n", env=both)
    add("ws_block_in_line", "a {% if true %}b{% endif %} c\n  {% set q = 1 %}  d\n", env=both)
    add("ws_raw_block", "  {% raw %}\n  {{ x }}\n  {% endraw %}\ndone", env=both)
    # Errors (C++ must fail too).
    add("error_raise_exception", "{% if true %}{{ raise_exception('Conversation roles must alternate') }}{% endif %}")
    add("error_undefined_attribute", "{{ missing.attr }}")
    add("error_undefined_arithmetic", "{{ missing + 1 }}")
    add("error_str_plus_int", "{{ 'a' + 1 }}")
    add("error_none_method", "{{ nil.strip() }}")
    add("error_unknown_filter", "{{ xs | nosuchfilter }}")
    add("error_unknown_tag", "{% include 'other.jinja' %}")
    add("error_unclosed_block", "{% if true %}never closed")
    add("error_syntax", "{{ 1 + }}")
    add("error_list_append", "{{ xs.append(4) }}")
    add("error_namespace_underscore", "{% set ns = namespace(_secret=1) %}", env="hf")
    add("error_division_by_zero", "{{ 1 / 0 }}")
    add("error_unpack", "{% for a, b in [[1, 2, 3]] %}{% endfor %}")
    add("error_tojson_undefined", "{{ missing | tojson }}")
    return cases


def construct_env(env):
    if env == "hf":
        tmpl_env = hf._cached_compile_jinja_template("").environment
        tmpl_env = tmpl_env.overlay()  # same filters and globals, with our own clock
        tmpl_env.globals = dict(tmpl_env.globals)
        tmpl_env.globals["strftime_now"] = lambda fmt: FIXED_NOW.strftime(fmt)
        return tmpl_env
    e = jinja2.sandbox.ImmutableSandboxedEnvironment(
        trim_blocks=env["trim_blocks"], lstrip_blocks=env["lstrip_blocks"],
        extensions=[jinja2.ext.loopcontrols])
    e.globals["raise_exception"] = _raise_exception
    e.globals["strftime_now"] = lambda fmt: FIXED_NOW.strftime(fmt)
    return e


def _raise_exception(message):
    raise jinja2.exceptions.TemplateError(message)


def render_construct(template, variables, env):
    try:
        return {"expected": construct_env(env).from_string(template).render(**variables)}
    except Exception as e:  # noqa: BLE001 - the error kind is the fixture
        return {"error": f"{type(e).__name__}: {e}"}


def write_construct_cases():
    out = []
    for name, template, variables, env in construct_cases():
        case = {"name": name, "template": template, "variables": variables}
        if env == "hf":
            case["env"] = "transformers"
        else:
            case["env"] = "jinja2"
            case.update(env)
        case.update(render_construct(template, variables, env))
        out.append(case)
    payload = {
        "generator": "tools/text/make_template_fixtures.py",
        "jinja2_version": jinja2.__version__,
        "transformers_version": transformers.__version__,
        "fixed_now": FIXED_NOW.isoformat(),
        "cases": out,
    }
    write_json(OUT_DIR / "jinja_cases.json", payload)
    return len(out)


# ----------------------------------------------------------------------------- chat templates

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_current_weather",
        "description": "Get the current weather in a given location, e.g. \"Paris\" <FR> & 'Zürich'",
        "parameters": {
            "type": "object",
            "properties": {
                "location": {"type": "string", "description": "The city, e.g. San Francisco"},
                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
                "days": {"type": "integer", "minimum": 1, "maximum": 10.5},
            },
            "required": ["location"],
        },
    },
}
SEARCH_TOOL = {
    "type": "function",
    "function": {"name": "search", "description": "Web search 🔎",
                 "parameters": {"type": "object", "properties": {"q": {"type": "string"}},
                                "required": ["q"]}},
}


def tool_call(call_id, name, arguments, as_string):
    args = json.dumps(arguments, ensure_ascii=False) if as_string else arguments
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": args}}


def conversations(family):
    """(name, messages, tools, add_generation_prompt, kwargs) tuples."""
    string_args = family.startswith("deepseek")
    sys_msg = {"role": "system", "content": "You are a helpful assistant."}
    u1 = {"role": "user", "content": "What is 2 + 2?"}
    a1 = {"role": "assistant", "content": "2 + 2 = 4."}
    u2 = {"role": "user", "content": "And times 3?"}
    call = tool_call("call_1", "get_current_weather", {"location": "Paris", "unit": "celsius"},
                     string_args)
    call2 = tool_call("call_2", "search", {"q": "weather \"Paris\" <today>"}, string_args)
    tool_turn = [
        {"role": "user", "content": "What's the weather in Paris? Also search the news."},
        {"role": "assistant", "content": None, "tool_calls": [call, call2]},
        {"role": "tool", "tool_call_id": "call_1", "content": "{\"temperature\": 21, \"unit\": \"celsius\"}"},
        {"role": "tool", "tool_call_id": "call_2", "content": "Sunny all week."},
        {"role": "assistant", "content": "It is 21 °C and sunny in Paris."},
    ]
    cases = [
        ("single_user", [u1], None, True, {}),
        ("single_user_no_generation_prompt", [u1], None, False, {}),
        ("system_user", [sys_msg, u1], None, True, {}),
        ("multi_turn", [sys_msg, u1, a1, u2], None, True, {}),
        ("multi_turn_no_system", [u1, a1, u2], None, True, {}),
        ("ends_with_assistant", [sys_msg, u1, a1], None, False, {}),
        ("long_conversation",
         [sys_msg] + [m for i in range(6) for m in (
             {"role": "user", "content": f"Question {i}?"},
             {"role": "assistant", "content": f"Answer {i}."})] + [u2], None, True, {}),
        ("unicode", [{"role": "system", "content": "Réponds en français — s'il te plaît."},
                     {"role": "user", "content": "你好！¿Qué tal? 😀 <b>bold</b> & \"quotes\" 'single' \\ back\\slash"},
                     {"role": "assistant", "content": "Привет! 👋 ∑ x² ≤ 10"},
                     {"role": "user", "content": "日本語で答えて。\ttab\u00a0nbsp"}], None, True, {}),
        ("empty_contents", [{"role": "system", "content": ""}, {"role": "user", "content": ""},
                            {"role": "assistant", "content": ""}, {"role": "user", "content": "ok"}],
         None, True, {}),
        ("whitespace_contents", [{"role": "user", "content": "  padded question \n\n"},
                                 {"role": "assistant", "content": "\n answer with spaces  "},
                                 {"role": "user", "content": "\n"}], None, True, {}),
        ("two_system_messages", [sys_msg, {"role": "system", "content": "Answer in one word."}, u1],
         None, True, {}),
        ("reasoning_content", [u1, {"role": "assistant", "content": "4",
                                    "reasoning_content": "Two plus two is four."}, u2],
         None, True, {}),
        ("reasoning_content_last_turn", [u1, {"role": "assistant", "content": "4",
                                              "reasoning_content": "\nTwo plus two.\n"}],
         None, False, {}),
        ("think_tags_in_content", [u1, {"role": "assistant",
                                        "content": "<think>\nadd them\n</think>\n\n4"}, u2],
         None, True, {}),
        ("think_tags_in_last_content", [u1, {"role": "assistant",
                                             "content": "<think>add</think>4"}], None, False, {}),
        ("enable_thinking_false", [u1], None, True, {"enable_thinking": False}),
        ("enable_thinking_true", [u1], None, True, {"enable_thinking": True}),
        ("enable_thinking_false_multi_turn", [sys_msg, u1, a1, u2], None, True,
         {"enable_thinking": False}),
        ("tools_available", [sys_msg, u1], [WEATHER_TOOL, SEARCH_TOOL], True, {}),
        ("tools_no_system", [u1], [WEATHER_TOOL], True, {}),
        ("tool_calls_and_results", [sys_msg] + tool_turn, [WEATHER_TOOL, SEARCH_TOOL], False, {}),
        ("tool_calls_then_question", [sys_msg] + tool_turn + [u2], [WEATHER_TOOL, SEARCH_TOOL],
         True, {}),
        ("tool_results_pending", [sys_msg] + tool_turn[:4], [WEATHER_TOOL, SEARCH_TOOL], True, {}),
        ("tool_call_with_content",
         [u1, {"role": "assistant", "content": "Let me check.", "tool_calls": [call]},
          {"role": "tool", "tool_call_id": "call_1", "content": "21"}], None, True, {}),
        ("tool_call_empty_content",
         [u1, {"role": "assistant", "content": "", "tool_calls": [call]},
          {"role": "tool", "tool_call_id": "call_1", "content": "21"}], [WEATHER_TOOL], True, {}),
        ("tool_calls_empty_content_two_calls",
         [u1, {"role": "assistant", "content": "", "tool_calls": [call, call2]},
          {"role": "tool", "tool_call_id": "call_1", "content": "21"},
          {"role": "tool", "tool_call_id": "call_2", "content": "sunny"}], [WEATHER_TOOL, SEARCH_TOOL],
         True, {}),
        ("tool_call_single_no_tools_arg",
         [u1, {"role": "assistant", "content": None, "tool_calls": [call]},
          {"role": "tool", "tool_call_id": "call_1", "content": "21"}], None, True, {}),
        ("user_tool_response_wrapped",
         [u1, {"role": "assistant", "content": "checking"},
          {"role": "user", "content": "<tool_response>\n21\n</tool_response>"}], None, True, {}),
        ("extra_message_fields", [{"role": "user", "content": "hi", "name": "alice", "id": 7}],
         None, True, {}),
    ]
    if family == "llama3_1":
        cases += [
            ("llama_custom_date", [sys_msg, u1], None, True, {"date_string": "01 Jan 2025"}),
            ("llama_tools_in_system", [sys_msg, u1], [WEATHER_TOOL], True,
             {"tools_in_user_message": False}),
            ("llama_builtin_tools",
             [sys_msg, u1, {"role": "assistant", "tool_calls": [
                 tool_call("c", "brave_search", {"query": "paris"}, False)]},
              {"role": "ipython", "content": "results"}], None, True,
             {"builtin_tools": ["brave_search", "wolfram_alpha", "code_interpreter"]}),
        ]
    return cases


def special_tokens(config):
    out = {}
    for key in SPECIAL_TOKEN_KEYS:
        value = config.get(key)
        if isinstance(value, dict):
            value = value.get("content")
        if value is not None:
            out[key] = value
    return out


def select_template(config, tools):
    template = config["chat_template"]
    if isinstance(template, list):
        named = {t["name"]: t["template"] for t in template}
        if tools is not None and "tool_use" in named:
            return named["tool_use"]
        return named["default"]
    return template


def render_chat(config, messages, tools, add_generation_prompt, kwargs):
    template = select_template(config, tools)
    try:
        rendered, _ = hf.render_jinja_template(
            conversations=[json.loads(json.dumps(messages))], tools=tools,
            chat_template=template, add_generation_prompt=add_generation_prompt,
            **{**special_tokens(config), **kwargs})
        return {"expected": rendered[0]}
    except Exception as e:  # noqa: BLE001 - the error kind is the fixture
        return {"error": f"{type(e).__name__}: {e}"}


def write_family(family, shared_dir):
    family_dir = OUT_DIR / family
    config_path = family_dir / "tokenizer_config.json"
    if family in SHARED_FAMILIES:
        family_dir.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shared_dir / family / "tokenizer_config.json", config_path)
        check_special_tokens(shared_dir / family)
    config = json.loads(config_path.read_text(encoding="utf-8"))
    cases = []
    for name, messages, tools, agp, kwargs in conversations(family):
        case = {"name": name, "messages": messages, "tools": tools,
                "add_generation_prompt": agp, "kwargs": kwargs}
        case.update(render_chat(config, messages, tools, agp, kwargs))
        cases.append(case)
    payload = {
        "generator": "tools/text/make_template_fixtures.py",
        "family": family,
        "renderer": f"transformers {transformers.__version__} render_jinja_template, "
                    f"jinja2 {jinja2.__version__}",
        "cases": cases,
    }
    write_json(family_dir / "golden.json", payload)
    errors = sum("error" in c for c in cases)
    return len(cases), errors


def check_special_tokens(tokenizer_dir):
    """Our special-token map must equal transformers' (the template sees these variables)."""
    tok = transformers.AutoTokenizer.from_pretrained(str(tokenizer_dir))
    config = json.loads((tokenizer_dir / "tokenizer_config.json").read_text(encoding="utf-8"))
    ours = special_tokens(config)
    theirs = {k: v for k, v in tok.special_tokens_map.items() if k in SPECIAL_TOKEN_KEYS}
    if ours != theirs:
        sys.exit(f"special tokens differ for {tokenizer_dir}: {ours} vs {theirs}")


def write_json(path, payload):
    path.write_text(json.dumps(payload, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared-dir", type=pathlib.Path,
                        default=pathlib.Path("/work/shared/tokenizers"))
    args = parser.parse_args()
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    print(f"jinja_cases.json: {write_construct_cases()} cases")
    families = sorted({*SHARED_FAMILIES, *(p.parent.name for p in OUT_DIR.glob("*/tokenizer_config.json"))})
    for family in families:
        n, errors = write_family(family, args.shared_dir)
        print(f"{family}/golden.json: {n} conversations ({errors} render errors)")


if __name__ == "__main__":
    main()
