// Scope analysis: which names each scope of a template starts with as Undefined, decided at
// parse time the way jinja2's compiler decides it (jinja2/idtracking.py).
//
// A name whose first use in a scope, in source order, is an assignment is local to that scope and
// starts undefined there, even when an enclosing scope or the render variables define it (a macro
// called before the assignment sees Undefined); a name first assigned inside an `if` keeps the
// outer value until assigned.
#pragma once

#include <string>
#include <vector>

#include "coordinator/text/jinja/ast.h"

namespace ponder::text::jinja {

// Fills the `*_locals` fields of every scope-opening statement in `root` and returns the names
// the template's top-level scope starts with as Undefined.
std::vector<std::string> analyze_scopes(Body& root);

}  // namespace ponder::text::jinja
