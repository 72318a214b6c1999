import Engine
import Foundation
import GGUF

/// The models of a run: loaded once, for what its modes need, by the CLI, `relay eval` and the server.
public struct ModelPair {
    public let large: Model?
    public let small: Model?
    /// A large model reached through text only (`--large-url`); then `large` is nil.
    public let remote: LargeModel?

    /// The model whose tokenizer and chat template read the prompt: the large one, or the small one
    /// when it runs alone or beside a remote large model.
    public var primary: Model { (large ?? small)! }

    /// Loads from the GGUF files `large` and `small` (nil: not given) the models that `modes` need
    /// (with `allGiven`, every model given, as a server whose requests pick the mode), once they
    /// and `sequences` KV caches of `contextSize` positions each are known to fit in memory.
    public static func load(large: String?, small: String?, modes: [Mode], remote: LargeModel? = nil, contextSize: Int,
                            sequences: Int = 1, allGiven: Bool = false) throws -> ModelPair {
        func first(_ needs: Mode.Needs) -> String { modes.first { !$0.needs.isDisjoint(with: needs) }?.name ?? "" }
        let needs = Mode.needs(modes)
        if remote != nil, needs.contains(.largeLogits) { throw ModeError.needsLocalLarge(mode: first(.largeLogits)) }
        let missing: Mode.Needs = small == nil && needs.contains(.small) ? .small : [.large, .largeLogits]
        return try load(large: large, small: small, needs: needs, for: "mode '\(first(missing))'", remote: remote,
                        contextSize: contextSize, sequences: sequences, allGiven: allGiven)
    }

    /// `load` for what `purpose` (named in errors: "relay calibrate") needs.
    public static func load(large: String?, small: String?, needs: Mode.Needs, for purpose: String, remote: LargeModel? = nil,
                            contextSize: Int, sequences: Int = 1, allGiven: Bool = false) throws -> ModelPair {
        var wantLarge = remote == nil && !needs.isDisjoint(with: [.large, .largeLogits])
        var wantSmall = needs.contains(.small)
        if remote != nil {
            // The local small model gives the tokenizer and chat template.
            guard small != nil else { throw ModelPairError.remoteNeedsSmall }
            wantSmall = true
        }
        if allGiven {
            wantLarge = wantLarge || (remote == nil && large != nil)
            wantSmall = wantSmall || small != nil
        }
        if wantLarge, large == nil { throw ModelPairError.missing(.large, purpose: purpose) }
        if wantSmall, small == nil { throw ModelPairError.missing(.small, purpose: purpose) }
        let largeFile = wantLarge ? try GGUFFile(path: large!) : nil
        let smallFile = wantSmall ? try GGUFFile(path: small!) : nil
        try MemoryBudget.check([largeFile, smallFile].compactMap { $0 }, contextSize: contextSize, sequences: sequences)
        return ModelPair(large: try largeFile.map { try Model(file: $0) }, small: try smallFile.map { try Model(file: $0) }, remote: remote)
    }

    /// One session per model, each with its own KV cache of `contextSize` positions.
    public func sessions(contextSize: Int) -> SessionPair {
        SessionPair(large: large.map { Session(model: $0, contextSize: contextSize) },
                    small: small.map { Session(model: $0, contextSize: contextSize) }, remote: remote)
    }
}

public enum ModelPairError: Error, CustomStringConvertible {
    case remoteNeedsSmall
    case missing(Role, purpose: String)
    public var description: String {
        switch self {
        case .remoteNeedsSmall: return "--large-url needs -md SMALL: the local small model gives the tokenizer and chat template"
        case .missing(let role, let purpose): return "\(purpose) needs a \(role) model: pass \(role == .large ? "-m LARGE" : "-md SMALL")"
        }
    }
}
