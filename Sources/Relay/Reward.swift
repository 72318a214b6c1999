/// RelayLLM's reward (arXiv 2601.05167): the share of an answer asked of the large model, which
/// every result reports (`RelayResult.rho`). The reward itself is training's (Training/Reward.swift).
public enum Reward {
    /// ρ = min(Σ min(n_i, 4096) / L, 1): the share of the answer requested from the large model,
    /// n_i the tokens asked by call i and L the rollout's generated length.
    public static func rho(requested: [Int], length: Int) -> Double {
        guard length > 0 else { return requested.isEmpty ? 0 : 1 }
        let asked = requested.reduce(0) { $0 + min($1, 4096) }
        return min(Double(asked) / Double(length), 1)
    }
}
