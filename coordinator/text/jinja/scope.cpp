// Scope analysis after jinja2's symbol tracking (see scope.h).
#include "coordinator/text/jinja/scope.h"

#include <map>
#include <set>

namespace ponder::text::jinja {
namespace {

// How a scope's local starts out (jinja2's VAR_LOAD_*): looked up outside, copied from an
// enclosing scope, Undefined, or bound as a parameter.
enum class Load { kResolve, kAlias, kUndefined, kParameter };

class Symbols {
 public:
  explicit Symbols(const Symbols* parent) : parent_(parent) {}

  bool has_ref(const std::string& name) const {
    for (const Symbols* s = this; s != nullptr; s = s->parent_) {
      if (s->refs_.count(name) != 0) return true;
    }
    return false;
  }

  void load(const std::string& name) {
    if (!has_ref(name)) refs_[name] = Load::kResolve;
  }

  void store(const std::string& name) {
    stores_.insert(name);
    if (refs_.count(name) != 0) return;
    refs_[name] = (parent_ != nullptr && parent_->has_ref(name)) ? Load::kAlias : Load::kUndefined;
  }

  void declare_parameter(const std::string& name) {
    stores_.insert(name);
    refs_[name] = Load::kParameter;
  }

  // Merges the symbols of an if's branch groups back into this scope. A name first assigned
  // inside a branch keeps its outer value until assigned (it may not be, at run time).
  void branch_update(const std::vector<Symbols>& branches) {
    std::set<std::string> new_stores;
    for (const Symbols& branch : branches) {
      for (const std::string& name : branch.stores_) {
        if (stores_.count(name) == 0) new_stores.insert(name);
      }
    }
    for (const Symbols& branch : branches) {
      for (const auto& [name, load] : branch.refs_) refs_[name] = load;
      stores_.insert(branch.stores_.begin(), branch.stores_.end());
    }
    for (const std::string& name : new_stores) {
      refs_[name] = (parent_ != nullptr && parent_->has_ref(name)) ? Load::kAlias : Load::kResolve;
    }
  }

  std::vector<std::string> undefined_names() const {
    std::vector<std::string> names;
    for (const auto& [name, load] : refs_) {
      if (load == Load::kUndefined) names.push_back(name);
    }
    return names;
  }

 private:
  const Symbols* parent_;
  std::map<std::string, Load> refs_;
  std::set<std::string> stores_;
};

void visit_expr(const Expr* expr, Symbols& symbols);

void visit_args(const CallArguments& args, Symbols& symbols) {
  for (const ExprPtr& e : args.positional) visit_expr(e.get(), symbols);
  for (const auto& [name, e] : args.keyword) visit_expr(e.get(), symbols);
  visit_expr(args.star_args.get(), symbols);
  visit_expr(args.star_kwargs.get(), symbols);
}

// Expressions only read names.
void visit_expr(const Expr* expr, Symbols& symbols) {
  if (expr == nullptr) return;
  switch (expr->kind) {
    case ExprKind::kLiteral:
      return;
    case ExprKind::kName:
      symbols.load(static_cast<const NameExpr*>(expr)->name);
      return;
    case ExprKind::kList:
    case ExprKind::kTuple:
      for (const ExprPtr& e : static_cast<const SequenceExpr*>(expr)->items)
        visit_expr(e.get(), symbols);
      return;
    case ExprKind::kDict:
      for (const auto& [k, v] : static_cast<const DictExpr*>(expr)->items) {
        visit_expr(k.get(), symbols);
        visit_expr(v.get(), symbols);
      }
      return;
    case ExprKind::kGetAttr:
      visit_expr(static_cast<const GetAttrExpr*>(expr)->object.get(), symbols);
      return;
    case ExprKind::kGetItem: {
      const auto* e = static_cast<const GetItemExpr*>(expr);
      visit_expr(e->object.get(), symbols);
      visit_expr(e->index.get(), symbols);
      return;
    }
    case ExprKind::kSlice: {
      const auto* e = static_cast<const SliceExpr*>(expr);
      visit_expr(e->object.get(), symbols);
      visit_expr(e->start.get(), symbols);
      visit_expr(e->stop.get(), symbols);
      visit_expr(e->step.get(), symbols);
      return;
    }
    case ExprKind::kCall: {
      const auto* e = static_cast<const CallExpr*>(expr);
      visit_expr(e->callee.get(), symbols);
      visit_args(e->args, symbols);
      return;
    }
    case ExprKind::kFilter: {
      const auto* e = static_cast<const FilterExpr*>(expr);
      visit_expr(e->operand.get(), symbols);
      visit_args(e->args, symbols);
      return;
    }
    case ExprKind::kTest: {
      const auto* e = static_cast<const TestExpr*>(expr);
      visit_expr(e->operand.get(), symbols);
      visit_args(e->args, symbols);
      return;
    }
    case ExprKind::kUnary:
      visit_expr(static_cast<const UnaryExpr*>(expr)->operand.get(), symbols);
      return;
    case ExprKind::kNot:
      visit_expr(static_cast<const NotExpr*>(expr)->operand.get(), symbols);
      return;
    case ExprKind::kBinary:
    case ExprKind::kAnd:
    case ExprKind::kOr: {
      const auto* e = static_cast<const BinaryExpr*>(expr);
      visit_expr(e->left.get(), symbols);
      visit_expr(e->right.get(), symbols);
      return;
    }
    case ExprKind::kCompare: {
      const auto* e = static_cast<const CompareExpr*>(expr);
      visit_expr(e->first.get(), symbols);
      for (const auto& [op, operand] : e->rest) visit_expr(operand.get(), symbols);
      return;
    }
    case ExprKind::kCondition: {
      const auto* e = static_cast<const ConditionExpr*>(expr);
      visit_expr(e->condition.get(), symbols);
      visit_expr(e->then_value.get(), symbols);
      visit_expr(e->else_value.get(), symbols);
      return;
    }
  }
}

void store_target(const AssignTarget& target, Symbols& symbols) {
  if (!target.attribute.empty()) {
    symbols.load(target.names[0]);  // `set ns.attr = ...` reads ns
    return;
  }
  for (const std::string& name : target.names) symbols.store(name);
}

// Walks the statements of one scope in source order (jinja2's FrameSymbolVisitor), not entering
// nested scopes; those are collected in `nested` and analyzed once this scope is complete.
class ScopeVisitor {
 public:
  ScopeVisitor(Symbols& symbols, std::vector<Stmt*>& nested)
      : symbols_(&symbols), nested_(nested) {}

  void visit_body(const Body& body) {
    for (const StmtPtr& stmt : body) visit(*stmt);
  }

 private:
  void visit(Stmt& stmt) {
    switch (stmt.kind) {
      case StmtKind::kText:
      case StmtKind::kBreak:
      case StmtKind::kContinue:
        return;
      case StmtKind::kOutput:
        visit_expr(static_cast<OutputStmt&>(stmt).expr.get(), *symbols_);
        return;
      case StmtKind::kIf:
        visit_if(static_cast<IfStmt&>(stmt), 0);
        return;
      case StmtKind::kFor:
        visit_expr(static_cast<ForStmt&>(stmt).iterable.get(), *symbols_);
        nested_.push_back(&stmt);
        return;
      case StmtKind::kSet: {
        auto& s = static_cast<SetStmt&>(stmt);
        visit_expr(s.value.get(), *symbols_);
        store_target(s.target, *symbols_);
        return;
      }
      case StmtKind::kSetBlock:
        store_target(static_cast<SetBlockStmt&>(stmt).target, *symbols_);
        nested_.push_back(&stmt);
        return;
      case StmtKind::kMacro:
        symbols_->store(static_cast<MacroStmt&>(stmt).name);
        nested_.push_back(&stmt);
        return;
      case StmtKind::kCallBlock: {
        auto& s = static_cast<CallBlockStmt&>(stmt);
        visit_expr(s.call.get(), *symbols_);
        nested_.push_back(&stmt);
        return;
      }
      case StmtKind::kFilterBlock:
        for (const auto& f : static_cast<FilterBlockStmt&>(stmt).filters)
          visit_args(f->args, *symbols_);
        nested_.push_back(&stmt);
        return;
      case StmtKind::kWith:
        for (const auto& [target, value] : static_cast<WithStmt&>(stmt).assignments) {
          visit_expr(value.get(), *symbols_);
        }
        nested_.push_back(&stmt);
        return;
      case StmtKind::kScope:
        nested_.push_back(&stmt);
        return;
    }
  }

  Symbols visit_in_copy(const Body& body) {
    Symbols copy = *symbols_;
    Symbols* saved = symbols_;
    symbols_ = &copy;
    visit_body(body);
    symbols_ = saved;
    return copy;
  }

  // jinja2 parses `if/elif/else` as If(test, body, elif_=[If(test, body)...], else_) and merges
  // three branch groups: the body, all elifs together, and the else.
  void visit_if(IfStmt& stmt, size_t first) {
    visit_expr(stmt.branches[first].first.get(), *symbols_);
    std::vector<Symbols> branches;
    branches.push_back(visit_in_copy(stmt.branches[first].second));
    Symbols elifs = *symbols_;
    if (first == 0) {
      Symbols* saved = symbols_;
      symbols_ = &elifs;
      for (size_t i = 1; i < stmt.branches.size(); ++i) visit_if(stmt, i);
      symbols_ = saved;
    }
    branches.push_back(std::move(elifs));
    branches.push_back(first == 0 ? visit_in_copy(stmt.else_body) : Symbols(*symbols_));
    symbols_->branch_update(branches);
  }

  Symbols* symbols_;
  std::vector<Stmt*>& nested_;
};

void analyze_nested(const std::vector<Stmt*>& nested, const Symbols& parent);

// Analyzes one scope: `declare` binds its parameters, then its body is walked.
template <class Declare>
std::vector<std::string> analyze_scope(const Body& body, const Symbols* parent, Declare declare) {
  Symbols symbols(parent);
  std::vector<Stmt*> nested;
  ScopeVisitor visitor(symbols, nested);
  declare(symbols);
  visitor.visit_body(body);
  analyze_nested(nested, symbols);
  return symbols.undefined_names();
}

void declare_params(const std::vector<MacroParam>& params, Symbols& symbols) {
  for (const MacroParam& p : params) symbols.declare_parameter(p.name);
  for (const MacroParam& p : params) visit_expr(p.default_value.get(), symbols);
}

void analyze_nested(const std::vector<Stmt*>& nested, const Symbols& parent) {
  for (Stmt* stmt : nested) {
    switch (stmt->kind) {
      case StmtKind::kFor: {
        auto* s = static_cast<ForStmt*>(stmt);
        s->body_locals = analyze_scope(s->body, &parent, [&](Symbols& sym) {
          for (const std::string& name : s->target.names) sym.declare_parameter(name);
        });
        s->else_locals = analyze_scope(s->else_body, &parent, [](Symbols&) {});
        break;
      }
      case StmtKind::kMacro: {
        auto* s = static_cast<MacroStmt*>(stmt);
        s->undefined_locals =
            analyze_scope(s->body, &parent, [&](Symbols& sym) { declare_params(s->params, sym); });
        break;
      }
      case StmtKind::kCallBlock: {
        auto* s = static_cast<CallBlockStmt*>(stmt);
        s->undefined_locals = analyze_scope(
            s->body, &parent, [&](Symbols& sym) { declare_params(s->caller_params, sym); });
        break;
      }
      case StmtKind::kSetBlock: {
        auto* s = static_cast<SetBlockStmt*>(stmt);
        s->undefined_locals = analyze_scope(s->body, &parent, [](Symbols&) {});
        break;
      }
      case StmtKind::kFilterBlock: {
        auto* s = static_cast<FilterBlockStmt*>(stmt);
        s->undefined_locals = analyze_scope(s->body, &parent, [&](Symbols& sym) {
          for (const auto& f : s->filters) visit_args(f->args, sym);
        });
        break;
      }
      case StmtKind::kWith: {
        auto* s = static_cast<WithStmt*>(stmt);
        s->undefined_locals = analyze_scope(s->body, &parent, [&](Symbols& sym) {
          for (const auto& [target, value] : s->assignments) store_target(target, sym);
        });
        break;
      }
      case StmtKind::kScope: {
        auto* s = static_cast<ScopeStmt*>(stmt);
        s->undefined_locals = analyze_scope(s->body, &parent, [](Symbols&) {});
        break;
      }
      default:
        break;
    }
  }
}

}  // namespace

std::vector<std::string> analyze_scopes(Body& root) {
  return analyze_scope(root, nullptr, [](Symbols&) {});
}

}  // namespace ponder::text::jinja
