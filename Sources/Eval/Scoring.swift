import Foundation

// Answer extraction and comparison.
//
// GSM8K: the content of the last non-empty `\boxed{}`, else the last number of the output; both
// sides are read as numbers (commas, `$`, `%`, `\text{}` units, trailing `.0` and words after the
// number are ignored; `x = 18` reads as 18; `\frac{7}{2}` as 3.5) and must be equal.
//
// MATH: the content of the last non-empty `\boxed{…}` (or `\fbox{…}`, or `\boxed 5` without
// braces) with balanced braces. Both sides are normalised (`normalizeMath`) and are equal when
//   1. the normalised strings are equal, or
//   2. both are numbers, fractions or numeric expressions (`\frac`, `\sqrt`, `\pi`, `+ - * / ^`,
//      mixed numbers such as `1\frac{4}{5}`) with the same value (relative difference ≤ 1e-9), or
//   3. both are tuples / intervals with the same brackets, matrices of the same shape, unions of
//      intervals, sets `\{…\}` or bare comma lists, whose elements are equal by these rules
//      (sets and bare lists in any order).

public enum Scorer {
    // MARK: Public API

    /// The answer of a model's output, or nil when it has none.
    public static func extract(style: ScoringStyle, output: String) -> String? {
        switch style {
        case .gsm8k:
            if let boxed = lastBoxed(output) { return boxed }
            return lastNumber(output)
        case .math:
            return lastBoxed(output)
        }
    }

    /// Whether an extracted answer matches the reference answer.
    public static func isCorrect(style: ScoringStyle, extracted: String?, reference: String) -> Bool {
        guard let extracted else { return false }
        switch style {
        case .gsm8k:
            guard let x = gsm8kNumber(extracted), let r = gsm8kNumber(reference) else {
                return normalizeMath(extracted) == normalizeMath(reference) && !normalizeMath(reference).isEmpty
            }
            return sameNumber(x, r)
        case .math:
            return mathEqual(extracted, reference)
        }
    }

    /// Extracts and compares in one go.
    public static func score(style: ScoringStyle, output: String, reference: String) -> (extracted: String?, correct: Bool) {
        let extracted = extract(style: style, output: output)
        return (extracted, isCorrect(style: style, extracted: extracted, reference: reference))
    }

    // MARK: Extraction

    /// The trimmed content of the last complete, non-empty `\boxed{…}` / `\fbox{…}` (balanced
    /// braces), or of `\boxed X` without braces (up to `$` or the end of the line). Earlier boxes
    /// are used when the last is empty (an echoed instruction) or unclosed (a cut-off output).
    public static func lastBoxed(_ text: String) -> String? {
        let chars = Array(text)
        var starts: [(index: Int, length: Int)] = []
        let commands: [[Character]] = [Array("\\boxed"), Array("\\fbox")]
        var i = 0
        while i < chars.count {
            if chars[i] == "\\" {
                for command in commands where matches(chars, at: i, command) {
                    let after = i + command.count
                    if after < chars.count, chars[after].isLetter { continue }   // \boxedsomething
                    starts.append((i, command.count))
                }
            }
            i += 1
        }
        for start in starts.reversed() {
            var j = start.index + start.length
            while j < chars.count, chars[j] == " " { j += 1 }
            guard j < chars.count else { continue }
            var content: String
            if chars[j] == "{" {
                guard let close = matchingClose(chars, j) else { continue }
                content = String(chars[(j + 1)..<close])
            } else {
                guard j > start.index + start.length else { continue }   // `\boxed5` is not a box
                var k = j
                while k < chars.count, chars[k] != "$", chars[k] != "\n" { k += 1 }
                content = String(chars[j..<k])
            }
            content = content.trimmingCharacters(in: .whitespacesAndNewlines)
            if !content.isEmpty { return content }
        }
        return nil
    }

    /// The last number written in `text` (`1,450,000`, `-3`, `0.5`), as written.
    public static func lastNumber(_ text: String) -> String? {
        let ns = text as NSString
        guard let match = RX.number.re.matches(in: text, range: NSRange(location: 0, length: ns.length)).last else { return nil }
        return ns.substring(with: match.range)
    }

    // MARK: GSM8K numbers

    /// Reads a GSM8K answer as a number: `1,450,000`, `$18.00`, `50%`, `18 dollars`, `x = 18`,
    /// `\text{18 eggs}`, `\frac{7}{2}`. Nil when there is no number.
    public static func gsm8kNumber(_ answer: String) -> Double? {
        var s = answer
        for (pattern, template) in RX.gsm8kCleanups { s = pattern.replace(s, template) }
        s = unwrapText(s)
        if let eq = s.lastIndex(of: "=") { s = String(s[s.index(after: eq)...]) }
        s = s.trimmingCharacters(in: .whitespacesAndNewlines)
        while s.hasSuffix(".") { s.removeLast() }
        let compact = s.filter { !$0.isWhitespace }
        if let value = plainNumber(compact) { return value }
        if let value = evaluate(fixFracs(compact)) { return value }
        // A number followed by words or units: its first number.
        let ns = s as NSString
        guard let match = RX.number.re.firstMatch(in: s, range: NSRange(location: 0, length: ns.length)) else { return nil }
        return plainNumber(ns.substring(with: match.range))
    }

    /// A plain decimal number, allowing thousands commas, a leading `$` and a trailing `%`:
    /// `-1,450,000.50`, `$18`, `.5`. Nil for anything else.
    public static func plainNumber(_ text: String) -> Double? {
        var s = text.trimmingCharacters(in: .whitespaces)
        if s.hasPrefix("\\$") { s.removeFirst(2) } else if s.hasPrefix("$") { s.removeFirst() }
        if s.hasSuffix("\\%") { s.removeLast(2) } else if s.hasSuffix("%") { s.removeLast() }
        guard RX.plainNumber.matches(s) else { return nil }
        return Double(s.replacingOccurrences(of: ",", with: ""))
    }

    // MARK: MATH

    /// Whether two MATH answers are equal after normalisation, as numbers, or element by element.
    public static func mathEqual(_ a: String, _ b: String) -> Bool {
        let x = normalizeMath(a)
        let y = normalizeMath(b)
        return normalizedEqual(x, y, depth: 0)
    }

    /// The canonical form of a MATH answer: no spaces, `\left`/`\right`, `\!`, `\,`, degrees,
    /// `\%`, `\$`, units, `\text{}` wrappers or trailing `.`; `\dfrac`/`\tfrac` → `\frac`,
    /// `\frac12` → `\frac{1}{2}`, `\sqrt2` → `\sqrt{2}`, `a/b` → `\frac{a}{b}`, `x = 5` → `5`,
    /// `10,\!080` → `10080`, `(C)` → `C`, one-word answers lower-cased.
    public static func normalizeMath(_ answer: String) -> String {
        var s = answer.trimmingCharacters(in: .whitespacesAndNewlines)
        s = stripDelimiters(s)
        while let inner = wholeArgument(s, of: ["\\boxed", "\\fbox"]) { s = inner.trimmingCharacters(in: .whitespaces) }
        s = s.replacingOccurrences(of: "\n", with: " ")
        s = removeSpacingCommands(s)
        for (pattern, template) in RX.mathRewrites { s = pattern.replace(s, template) }
        s = RX.unitText.replace(s, "")
        s = unwrapText(s)
        s = RX.unitWords.replace(s, "$1")
        s = s.filter { !$0.isWhitespace }
        while s.hasSuffix(".") { s.removeLast() }
        if s.hasPrefix("\\$") { s.removeFirst(2) }
        s = RX.inPrefix.replace(s, "")
        s = stripEquationPrefix(s)
        s = fixFracs(s)
        s = fixSqrt(s)
        for (pattern, template) in RX.mathCleanups { s = pattern.replace(s, template) }
        if RX.thousands.matches(s) { s = s.replacingOccurrences(of: ",", with: "") }
        if let groups = RX.negativeNumerator.groups(s) { s = "-\\frac{\(groups[0])}{\(groups[1])}" }
        if let groups = RX.slashFraction.groups(s) { s = "\(groups[0])\\frac{\(groups[1])}{\(groups[2])}" }
        if let groups = RX.choice.groups(s) { s = groups[0] }
        if s.count >= 2, s.allSatisfy({ $0.isLetter }) { s = s.lowercased() }
        return s
    }

    /// The value of a numeric answer (`3`, `-0.5`, `\frac{3}{4}`, `2\sqrt{3}`, `\frac{\pi}{6}`,
    /// `1\frac{4}{5}`, `2^{10}`), or nil when it is not a closed numeric expression.
    public static func numericValue(_ answer: String) -> Double? {
        evaluate(normalizeMath(answer))
    }

    // MARK: Equality

    static func sameNumber(_ a: Double, _ b: Double) -> Bool {
        a == b || abs(a - b) <= 1e-9 * max(abs(a), abs(b))
    }

    static func normalizedEqual(_ x: String, _ y: String, depth: Int) -> Bool {
        if x == y { return !x.isEmpty }
        if x.isEmpty || y.isEmpty || depth > 4 { return false }
        if let u = evaluate(x), let v = evaluate(y) { return sameNumber(u, v) }
        // Matrices.
        if let m = matrixCells(x), let n = matrixCells(y) {
            guard m.count == n.count else { return false }
            for (r, s) in zip(m, n) {
                guard r.count == s.count else { return false }
                for (a, b) in zip(r, s) where !elementEqual(a, b, depth: depth) { return false }
            }
            return true
        }
        // Unions of intervals.
        let xu = splitTopLevel(x, separator: "\\cup")
        let yu = splitTopLevel(y, separator: "\\cup")
        if xu.count > 1 || yu.count > 1 {
            return xu.count == yu.count && zip(xu, yu).allSatisfy { elementEqual($0, $1, depth: depth) }
        }
        // Sets.
        if let a = setElements(x), let b = setElements(y) {
            return sameMultiset(a, b, depth: depth)
        }
        // Tuples and intervals.
        if let (xo, xs, xc) = bracketed(x), let (yo, ys, yc) = bracketed(y) {
            guard xo == yo, xc == yc, xs.count == ys.count else { return false }
            return zip(xs, ys).allSatisfy { elementEqual($0, $1, depth: depth) }
        }
        // Bare lists (`1,-2` and `-2,1`).
        let xl = splitTopLevel(x, separator: ",")
        let yl = splitTopLevel(y, separator: ",")
        if xl.count > 1, yl.count > 1, bracketed(x) == nil, bracketed(y) == nil {
            return sameMultiset(xl, yl, depth: depth)
        }
        return false
    }

    static func elementEqual(_ a: String, _ b: String, depth: Int) -> Bool {
        normalizedEqual(normalizeMath(a), normalizeMath(b), depth: depth + 1)
    }

    static func sameMultiset(_ a: [String], _ b: [String], depth: Int) -> Bool {
        guard a.count == b.count else { return false }
        var unused = b
        for element in a {
            guard let k = unused.firstIndex(where: { elementEqual(element, $0, depth: depth) }) else { return false }
            unused.remove(at: k)
        }
        return true
    }

    /// `(a,b)` / `[a,b)` / … with at least two top-level elements: (open, elements, close).
    static func bracketed(_ s: String) -> (Character, [String], Character)? {
        guard let first = s.first, let last = s.last, "([".contains(first), ")]".contains(last), s.count >= 2 else { return nil }
        let chars = Array(s)
        // The opening bracket must close at the very end.
        var depth = 0
        for (k, c) in chars.enumerated() {
            if "([{".contains(c) { depth += 1 } else if ")]}".contains(c) { depth -= 1 }
            if depth == 0 && k < chars.count - 1 { return nil }
        }
        let inner = String(chars[1..<(chars.count - 1)])
        let parts = splitTopLevel(inner, separator: ",")
        guard parts.count >= 2 else { return nil }
        return (first, parts, last)
    }

    /// `\{a,b\}` → [a, b].
    static func setElements(_ s: String) -> [String]? {
        guard s.hasPrefix("\\{"), s.hasSuffix("\\}"), s.count >= 4 else { return nil }
        let inner = String(s.dropFirst(2).dropLast(2))
        if inner.contains("\\{") || inner.contains("\\}") { return nil }
        return splitTopLevel(inner, separator: ",")
    }

    /// `\begin{pmatrix}a&b\\c&d\end{pmatrix}` → [[a, b], [c, d]].
    static func matrixCells(_ s: String) -> [[String]]? {
        let begin = "\\begin{pmatrix}", end = "\\end{pmatrix}"
        guard s.hasPrefix(begin), s.hasSuffix(end) else { return nil }
        let inner = String(s.dropFirst(begin.count).dropLast(end.count))
        var rows = splitTopLevel(inner, separator: "\\\\")
        if rows.last?.isEmpty == true { rows.removeLast() }
        return rows.map { splitTopLevel($0, separator: "&") }
    }

    /// Splits at `separator` outside of brackets and braces.
    static func splitTopLevel(_ s: String, separator: String) -> [String] {
        let chars = Array(s)
        let sep = Array(separator)
        var parts: [String] = []
        var depth = 0
        var current: [Character] = []
        var i = 0
        while i < chars.count {
            let c = chars[i]
            if c == "\\", i + 1 < chars.count, "{}".contains(chars[i + 1]), separator != "\\\\" {
                // `\{` and `\}` nest like brackets.
                depth += chars[i + 1] == "{" ? 1 : -1
                current.append(c); current.append(chars[i + 1]); i += 2
                continue
            }
            if depth == 0, matches(chars, at: i, sep) {
                parts.append(String(current)); current = []; i += sep.count
                continue
            }
            if "([{".contains(c) { depth += 1 } else if ")]}".contains(c) { depth -= 1 }
            current.append(c)
            i += 1
        }
        parts.append(String(current))
        return parts
    }

    // MARK: Normalisation helpers

    /// Removes `$…$`, `\(…\)`, `\[…\]` around the whole answer.
    static func stripDelimiters(_ s: String) -> String {
        var s = s
        for (open, close) in [("$$", "$$"), ("$", "$"), ("\\(", "\\)"), ("\\[", "\\]")] {
            if s.count >= open.count + close.count, s.hasPrefix(open), s.hasSuffix(close) {
                s = String(s.dropFirst(open.count).dropLast(close.count)).trimmingCharacters(in: .whitespaces)
            }
        }
        return s
    }

    /// The argument when `s` is exactly `\command{argument}` for one of `commands`.
    static func wholeArgument(_ s: String, of commands: [String]) -> String? {
        for command in commands where s.hasPrefix(command + "{") && s.hasSuffix("}") {
            let chars = Array(s)
            if matchingClose(chars, command.count) == chars.count - 1 {
                return String(chars[(command.count + 1)..<(chars.count - 1)])
            }
        }
        return nil
    }

    /// Drops the thin-space and spacing commands `\!`, `\,`, `\;`, `\:`, `\ `, `~` (keeping `\\`).
    static func removeSpacingCommands(_ s: String) -> String {
        var out: [Character] = []
        let chars = Array(s)
        var i = 0
        while i < chars.count {
            let c = chars[i]
            if c == "\\", i + 1 < chars.count {
                let d = chars[i + 1]
                if d == "\\" { out.append(c); out.append(d); i += 2; continue }
                if "!,;: ".contains(d) { out.append(" "); i += 2; continue }
            }
            if c == "~" { out.append(" "); i += 1; continue }
            out.append(c)
            i += 1
        }
        return String(out)
    }

    /// `\text{X}`, `\textbf{X}`, `\mbox{X}`, `\mathrm{X}`, … → `X`.
    static func unwrapText(_ s: String) -> String {
        var s = s
        var previous = ""
        while previous != s {
            previous = s
            s = RX.textWrapper.replace(s, "$1")
        }
        return s
    }

    /// `x=5` → `5`, `f(x)=x^2` → `x^2`, `\theta=30` → `30`, when the left side is a single name.
    static func stripEquationPrefix(_ s: String) -> String {
        let parts = s.split(separator: "=", omittingEmptySubsequences: false)
        guard parts.count == 2, !parts[1].isEmpty, RX.variable.matches(String(parts[0])) else { return s }
        return String(parts[1])
    }

    /// `\frac12` → `\frac{1}{2}`, `\frac{270}7` → `\frac{270}{7}`, `\frac\pi2` → `\frac{\pi}{2}`.
    static func fixFracs(_ s: String) -> String {
        rewriteArguments(s, command: "\\frac", count: 2)
    }

    /// `\sqrt2` → `\sqrt{2}`, `\sqrt\pi` → `\sqrt{\pi}` (`\sqrt[3]{x}` is left alone).
    static func fixSqrt(_ s: String) -> String {
        rewriteArguments(s, command: "\\sqrt", count: 1)
    }

    /// Puts braces around the `count` arguments of every `command` (single characters or
    /// `\commands` as well as braced groups); arguments are rewritten recursively.
    static func rewriteArguments(_ s: String, command: String, count: Int) -> String {
        guard s.contains(command) else { return s }
        let chars = Array(s)
        let cmd = Array(command)
        var out = ""
        var i = 0
        while i < chars.count {
            guard matches(chars, at: i, cmd), !(i + cmd.count < chars.count && chars[i + cmd.count].isLetter) else {
                out.append(chars[i]); i += 1
                continue
            }
            var j = i + cmd.count
            var args: [String] = []
            while args.count < count {
                while j < chars.count, chars[j] == " " { j += 1 }
                guard j < chars.count else { break }
                if chars[j] == "{" {
                    guard let close = matchingClose(chars, j) else { break }
                    args.append(String(chars[(j + 1)..<close])); j = close + 1
                } else if chars[j] == "\\" {
                    var k = j + 1
                    while k < chars.count, chars[k].isLetter { k += 1 }
                    if k == j + 1, k < chars.count { k += 1 }
                    args.append(String(chars[j..<k])); j = k
                } else if chars[j] == "[" || chars[j] == "}" || chars[j] == ")" {
                    break
                } else {
                    args.append(String(chars[j])); j += 1
                }
            }
            if args.count == count {
                out += command + args.map { "{" + rewriteArguments($0, command: command, count: count) + "}" }.joined()
                i = j
            } else {
                out += command
                i += cmd.count
            }
        }
        return out
    }

    // MARK: Evaluation

    /// Evaluates a normalised closed numeric expression; nil when it has letters, unknown
    /// commands or is not finite.
    static func evaluate(_ s: String) -> Double? {
        guard !s.isEmpty else { return nil }
        var parser = ExpressionParser(Array(s))
        return parser.parse()
    }

    // MARK: Character helpers

    static func matches(_ chars: [Character], at i: Int, _ pattern: [Character]) -> Bool {
        guard i + pattern.count <= chars.count else { return false }
        for k in 0..<pattern.count where chars[i + k] != pattern[k] { return false }
        return true
    }

    /// The index of the `}` closing the `{` at `open` (escaped `\{`, `\}` are skipped).
    static func matchingClose(_ chars: [Character], _ open: Int) -> Int? {
        var depth = 0
        var i = open
        while i < chars.count {
            let c = chars[i]
            if c == "\\" { i += 2; continue }
            if c == "{" { depth += 1 } else if c == "}" {
                depth -= 1
                if depth == 0 { return i }
            }
            i += 1
        }
        return nil
    }
}

/// Recursive-descent evaluator for `+ - * / ^`, `\cdot`, `\times`, `\frac`, `\sqrt`, `\pi`,
/// parentheses, braces, implicit products and mixed numbers.
private struct ExpressionParser {
    let c: [Character]
    var i = 0

    init(_ chars: [Character]) { c = chars }

    mutating func parse() -> Double? {
        guard let v = expression(), i == c.count, v.isFinite else { return nil }
        return v
    }

    func peek(_ s: String) -> Bool { Scorer.matches(c, at: i, Array(s)) }

    mutating func expression() -> Double? {
        guard var v = term() else { return nil }
        while i < c.count, c[i] == "+" || c[i] == "-" {
            let plus = c[i] == "+"
            i += 1
            guard let t = term() else { return nil }
            v = plus ? v + t : v - t
        }
        return v
    }

    mutating func term() -> Double? {
        guard var v = unary() else { return nil }
        while i < c.count {
            if c[i] == "*" || peek("\\cdot") || peek("\\times") {
                i += c[i] == "*" ? 1 : (peek("\\cdot") ? 5 : 6)
                guard let f = unary() else { return nil }
                v *= f
            } else if c[i] == "/" || peek("\\div") {
                i += c[i] == "/" ? 1 : 4
                guard let f = unary() else { return nil }
                v /= f
            } else if startsAtom() {
                guard let f = power() else { return nil }
                v *= f
            } else {
                break
            }
        }
        return v
    }

    mutating func unary() -> Double? {
        if i < c.count, c[i] == "-" { i += 1; return unary().map { -$0 } }
        if i < c.count, c[i] == "+" { i += 1; return unary() }
        return power()
    }

    func startsAtom() -> Bool {
        guard i < c.count else { return false }
        if c[i].isASCII && c[i].isNumber || "({.".contains(c[i]) { return true }
        return peek("\\pi") || peek("\\frac") || peek("\\sqrt")
    }

    mutating func power() -> Double? {
        guard let base = atom() else { return nil }
        guard i < c.count, c[i] == "^" else { return base }
        i += 1
        guard i < c.count else { return nil }
        let exponent: Double?
        if c[i].isASCII && c[i].isNumber {
            exponent = Double(String(c[i])); i += 1
        } else if c[i] == "-" {
            i += 1
            exponent = atom().map { -$0 }
        } else {
            exponent = atom()
        }
        guard let e = exponent else { return nil }
        return pow(base, e)
    }

    /// A braced group or a single digit (an argument of `\frac` or `\sqrt`).
    mutating func group() -> Double? {
        guard i < c.count else { return nil }
        if c[i] == "{" {
            i += 1
            guard let v = expression(), i < c.count, c[i] == "}" else { return nil }
            i += 1
            return v
        }
        if c[i].isASCII && c[i].isNumber { defer { i += 1 }; return Double(String(c[i])) }
        return nil
    }

    mutating func number() -> Double? {
        let start = i
        while i < c.count, c[i].isASCII && c[i].isNumber || c[i] == "." { i += 1 }
        return Double(String(c[start..<i]))
    }

    mutating func atom() -> Double? {
        guard i < c.count else { return nil }
        let ch = c[i]
        if ch.isASCII && ch.isNumber || ch == "." {
            let wasInteger = !c[i..<min(c.count, i + 40)].prefix(while: { $0.isNumber || $0 == "." }).contains(".")
            guard let v = number() else { return nil }
            // A mixed number: `1\frac{4}{5}` is 1 + 4/5.
            if wasInteger, peek("\\frac{"), let mixed = mixedFraction() { return v + mixed }
            return v
        }
        if ch == "(" || ch == "{" {
            let close: Character = ch == "(" ? ")" : "}"
            i += 1
            guard let v = expression(), i < c.count, c[i] == close else { return nil }
            i += 1
            return v
        }
        if peek("\\pi") && !(i + 3 < c.count && c[i + 3].isLetter) { i += 3; return Double.pi }
        if peek("\\frac") {
            i += 5
            guard let n = group(), let d = group() else { return nil }
            return n / d
        }
        if peek("\\sqrt") {
            i += 5
            var index = 2.0
            if i < c.count, c[i] == "[" {
                i += 1
                guard let v = expression(), i < c.count, c[i] == "]" else { return nil }
                i += 1
                index = v
            }
            guard let v = group() else { return nil }
            if index == 2 { return v >= 0 ? v.squareRoot() : nil }
            return v >= 0 ? pow(v, 1 / index) : nil
        }
        return nil
    }

    /// `\frac{4}{5}` with integer parts, right after an integer.
    mutating func mixedFraction() -> Double? {
        let save = i
        let rest = String(c[i...])
        guard let groups = RX.mixedFraction.prefixGroups(rest), let n = Double(groups[0]), let d = Double(groups[1]), d != 0, n < d else {
            i = save
            return nil
        }
        i += groups[2].count
        return n / d
    }
}

// MARK: - Regular expressions

/// A compiled regular expression (NSRegularExpression is safe to share between threads).
struct Pattern: @unchecked Sendable {
    let re: NSRegularExpression

    init(_ pattern: String) {
        re = try! NSRegularExpression(pattern: pattern, options: [])
    }

    func replace(_ s: String, _ template: String) -> String {
        re.stringByReplacingMatches(in: s, range: NSRange(location: 0, length: (s as NSString).length), withTemplate: template)
    }

    func matches(_ s: String) -> Bool {
        re.firstMatch(in: s, range: NSRange(location: 0, length: (s as NSString).length)) != nil
    }

    /// The capture groups (missing ones as "") of the first match.
    func groups(_ s: String) -> [String]? {
        let ns = s as NSString
        guard let m = re.firstMatch(in: s, range: NSRange(location: 0, length: ns.length)) else { return nil }
        return (1..<m.numberOfRanges).map { m.range(at: $0).location == NSNotFound ? "" : ns.substring(with: m.range(at: $0)) }
    }

    /// The capture groups followed by the whole match, when the match starts at the beginning.
    func prefixGroups(_ s: String) -> [String]? {
        let ns = s as NSString
        guard let m = re.firstMatch(in: s, options: .anchored, range: NSRange(location: 0, length: ns.length)) else { return nil }
        return (1..<m.numberOfRanges).map { ns.substring(with: m.range(at: $0)) } + [ns.substring(with: m.range)]
    }
}

enum RX {
    /// A number as written in text: `1,450,000`, `-3`, `0.5`, `.5`.
    static let number = Pattern(#"(?<![\w.])-?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?|(?<![\w.])-?\.\d+"#)
    static let plainNumber = Pattern(#"^-?(?:\d{1,3}(?:,\d{3})+|\d+)?(?:\.\d+)?$(?<=\d)"#)
    static let gsm8kCleanups: [(Pattern, String)] = [
        (Pattern(#"\\[!,;: ]"#), ""),
        (Pattern(#"\\?\$"#), ""),
        (Pattern(#"\\?%"#), ""),
        (Pattern(#"\^\s*\{?\s*\\circ\s*\}?"#), ""),
        (Pattern(#"\\[dt]frac"#), "\\\\frac"),
        (Pattern(#"(\d),(?=\d{3}(?!\d))"#), "$1"),
    ]
    static let mathRewrites: [(Pattern, String)] = [
        (Pattern(#"\\(?:left|right|bigl|bigr|Bigl|Bigr|big|Big)(?![A-Za-z])"#), ""),
        (Pattern(#"\\displaystyle(?![A-Za-z])"#), ""),
        (Pattern(#"\\[dt]frac(?![A-Za-z])"#), "\\\\frac"),
        (Pattern(#"\\leq(?![A-Za-z])"#), "\\\\le"),
        (Pattern(#"\\geq(?![A-Za-z])"#), "\\\\ge"),
        (Pattern(#"\\neq(?![A-Za-z])"#), "\\\\ne"),
        (Pattern(#"bmatrix"#), "pmatrix"),
        (Pattern(#"\^\s*\{\s*\\circ\s*\}|\^\s*\\circ(?![A-Za-z])|°|\\degree(?![A-Za-z])"#), ""),
        (Pattern(#"\\%|%"#), ""),
        (Pattern(#"\\\$|\$"#), ""),
    ]
    /// Units at the end: `\text{ cm}^2`, `\mbox{ inches}` (text starting with a space).
    static let unitText = Pattern(#"\\(?:text|mbox|textrm|mathrm|textnormal)\{\s+[^{}]*\}\s*(?:\^\s*\{?\d\}?)?\s*$"#)
    static let textWrapper = Pattern(#"\\(?:text|textbf|textit|textrm|textnormal|mathrm|mathbf|mathit|mbox|operatorname)\s*\{([^{}]*)\}"#)
    /// Words after a number at the end: `18 integers`, `864 inches^2`, `5.4 cents`.
    static let unitWords = Pattern(#"^(.*[0-9}])\s+[a-zA-Z]{2,}(?:\s+[a-zA-Z]{2,})*\s*(?:\^\s*\{?[23]\}?)?\.?\s*$"#)
    static let inPrefix = Pattern(#"^[a-zA-Z]\\in(?![A-Za-z])"#)
    static let variable = Pattern(#"^(?:\\?[a-zA-Z]{1,6})(?:_\{?[a-zA-Z0-9]+\}?)?(?:\([a-zA-Z]\))?$"#)
    static let mathCleanups: [(Pattern, String)] = [
        // `.5` → `0.5`
        (Pattern(#"(^|[^0-9])\.([0-9])"#), "$10.$2"),
        // `18.0` → `18`, `2.50` → `2.5`
        (Pattern(#"(\d)\.0+(?![0-9])"#), "$1"),
        (Pattern(#"(\d\.\d*?[1-9])0+(?![0-9])"#), "$1"),
        // `_{5}` → `_5`, `^{2}` → `^2`
        (Pattern(#"([_^])\{([A-Za-z0-9])\}"#), "$1$2"),
    ]
    static let thousands = Pattern(#"^-?\d{1,3}(?:,\d{3})+(?:\.\d+)?$"#)
    static let negativeNumerator = Pattern(#"^\\frac\{-([^{}]+)\}\{([^{}]+)\}$"#)
    /// `a/b` with simple sides: `-1/3`, `\pi/2`, `\sqrt{3}/3`.
    static let slashFraction = Pattern(#"^(-?)((?:[0-9.]+|\\pi|\\sqrt\{[0-9]+\}|[a-zA-Z])+)/((?:[0-9.]+|\\pi|\\sqrt\{[0-9]+\}|[a-zA-Z])+)$"#)
    static let choice = Pattern(#"^\(([A-Za-z])\)$"#)
    static let mixedFraction = Pattern(#"\\frac\{(\d+)\}\{(\d+)\}"#)
}
