import Relay

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

extension Reward {
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
