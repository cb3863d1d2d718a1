// One family of check macros, all built on PONDER_DO_WHILE0: invariants abort with a message;
// PONDER_RETURN_IF_ERROR / PONDER_ASSIGN_OR_RETURN propagate Status / Expected.
#pragma once

#include <cstdio>
#include <cstdlib>

#include "common/status.h"
#include "common/strings.h"

#define PONDER_DO_WHILE0(body) \
  do {                         \
    body                       \
  } while (0)

namespace ponder::detail {
[[noreturn]] void check_failed(const char* file, int line, const char* cond, const std::string& msg);
}  // namespace ponder::detail

// Invariant: a broken one is a bug in ponder, not bad input.
#define PONDER_CHECK(cond, ...)                                                        \
  PONDER_DO_WHILE0(if (!(cond)) {                                                      \
    ::ponder::detail::check_failed(__FILE__, __LINE__, #cond,                          \
                                   ::ponder::strformat(__VA_ARGS__));                  \
  })

#define PONDER_RETURN_IF_ERROR(expr)                      \
  PONDER_DO_WHILE0(::ponder::Status _st = (expr);          \
                   if (!_st.ok()) return tl::unexpected(std::move(_st));)

#define PONDER_CONCAT_INNER(a, b) a##b
#define PONDER_CONCAT(a, b) PONDER_CONCAT_INNER(a, b)
#define PONDER_ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr)          \
  auto tmp = (expr);                                          \
  if (!tmp) return tl::unexpected(std::move(tmp).error());    \
  lhs = std::move(*tmp)
// lhs may be a declaration: PONDER_ASSIGN_OR_RETURN(auto file, open(path));
#define PONDER_ASSIGN_OR_RETURN(lhs, expr) \
  PONDER_ASSIGN_OR_RETURN_IMPL(PONDER_CONCAT(_expected_, __LINE__), lhs, expr)
