/// RelayLLM's reward (arXiv 2601.05167). Before training each problem is sorted by sampling the
/// small model alone (k samples) and the large model alone.
public enum ProblemClass: String, Codable, Sendable, CaseIterable {
    /// The small model solves it at least once.
    case solvable
    /// Only the large model solves it.
    case teacherDependent = "teacher-dependent"
    /// Neither does.
    case unsolvable

    public init(smallSolved: Bool, largeSolved: Bool) {
        self = smallSolved ? .solvable : largeSolved ? .teacherDependent : .unsolvable
    }
}

public enum Reward {
    /// ρ = min(Σ min(n_i, 4096) / L, 1): the share of the answer requested from the large model,
    /// n_i the tokens asked by call i and L the rollout's generated length.
    public static func rho(requested: [Int], length: Int) -> Double {
        guard length > 0 else { return requested.isEmpty ? 0 : 1 }
        let asked = requested.reduce(0) { $0 + min($1, 4096) }
        return min(Double(asked) / Double(length), 1)
    }

    /// Solvable: correct without a call 1.5, correct with calls 1 − ρ, wrong 0.
    /// Teacher-dependent: correct with calls 1 − ρ, wrong without calling −1, otherwise 0.
    /// Unsolvable: calls earn ρ (otherwise 0).
    public static func value(_ kind: ProblemClass, correct: Bool, calls: Int, rho: Double) -> Double {
        let called = calls > 0
        switch kind {
        case .solvable:
            return correct ? (called ? 1 - rho : 1.5) : 0
        case .teacherDependent:
            if correct && called { return 1 - rho }
            return !correct && !called ? -1 : 0
        case .unsolvable:
            return called ? rho : 0
        }
    }
}
