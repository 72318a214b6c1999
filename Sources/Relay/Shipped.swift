import Engine
import Foundation
import ShippedFiles

/// Files shipped with Relay for known models (RelayGen cue files, RelayLLM call heads), compiled
/// into the binary (`ShippedFiles`) and found by the identities of the models they were made with
/// (`ModelIdentity`), whatever the GGUF files are called. A file is made for two models: cue files
/// for the large model writing and the small one taking over, heads for the small model calling the
/// large one. The first of the two must be the same model (silently) or the same base in another
/// quantisation or file (with a warning); the second, when known, only adds a warning when it differs.
public enum Shipped {
    /// A shipped file chosen for the models at hand, or why none was.
    public enum Lookup<File> {
        /// `name` is the file's path under Sources/ShippedFiles; `warnings` say how the models at
        /// hand differ from those it was made with (none for the same weights).
        case found(File, name: String, warnings: [String])
        case none(reason: String)

        public var file: File? {
            if case .found(let file, _, _) = self { return file }
            return nil
        }
        public var warnings: [String] {
            if case .found(_, _, let w) = self { return w }
            return []
        }
        public var reason: String? {
            if case .none(let r) = self { return r }
            return nil
        }
    }

    /// A shipped file with the identities it records (nil in files written before they existed).
    struct Candidate<File> {
        var name: String
        var file: File
        var primary: ModelIdentity?
        var partner: ModelIdentity?
    }

    /// The shipped files decode (a test holds every one to it), so none is dropped here.
    static let cues: [Candidate<CueSet>] = ShippedFiles.cues.compactMap { f in
        let name = "Cues/" + f.name
        return (try? CueSet.decode(Data(f.bytes), source: name)).map { Candidate(name: name, file: $0, primary: $0.large, partner: $0.small) }
    }
    static let heads: [Candidate<RelayHead>] = ShippedFiles.heads.compactMap { f in
        let name = "Heads/" + f.name
        return (try? RelayHead.decode(Data(f.bytes), source: name)).map { Candidate(name: name, file: $0, primary: $0.small, partner: $0.large) }
    }

    /// The candidate most like `model` (at least the same base), then most like `partner`, with how
    /// alike each is.
    static func best<File>(_ candidates: [Candidate<File>], model: ModelIdentity, partner: ModelIdentity?)
        -> (candidate: Candidate<File>, likeness: ModelIdentity.Likeness, partner: ModelIdentity.Likeness?)? {
        var best: (candidate: Candidate<File>, likeness: ModelIdentity.Likeness, partner: ModelIdentity.Likeness?)?
        for c in candidates {
            guard let primary = c.primary else { continue }
            let likeness = model.likeness(to: primary)
            guard likeness >= .sameBase else { continue }
            let p = partner.flatMap { p in c.partner.map { p.likeness(to: $0) } }
            if let b = best, (b.likeness, b.partner ?? .other) >= (likeness, p ?? .other) { continue }
            best = (c, likeness, p)
        }
        return best
    }

    /// What a warning says of a model that is not the one a file was made with (`role`: "large"
    /// or "small"; `recorded`: the identity in the file).
    static func difference(_ role: String, _ model: ModelIdentity, _ recorded: ModelIdentity, likeness: ModelIdentity.Likeness) -> String {
        let differences = model.differences(from: recorded)
        let listed = differences.prefix(3).joined(separator: "; ") + (differences.count > 3 ? "; …" : "")
        let what = likeness == .sameBase
            ? "another file of the same base model (same architecture, sizes and vocabulary; \(listed): a requantisation, or a fine-tune)"
            : "another model (\(listed))"
        return "it was made with the \(role) model \(recorded.summary); this \(role) model, \(model.summary), is \(what)"
    }

    /// Every distinct warning once per process, on standard error (modes are built per request).
    static func report(_ warnings: [String]) {
        for w in warnings { reported.post(w) }
    }

    private static let reported = Reported()

    final class Reported: @unchecked Sendable {
        let lock = NSLock()
        var seen = Set<String>()
        func post(_ warning: String) {
            lock.lock()
            let new = seen.insert(warning).inserted
            lock.unlock()
            if new { FileHandle.standardError.write(Data("warning: \(warning)\n".utf8)) }
        }
    }
}

extension CueSet {
    /// The shipped cue file for a large model writing and a small one taking over: its large model
    /// must be this one (the same weights, or with a warning the same base), and so must its small
    /// model, since the cues measure how sure the small model is of the large model's text.
    public static func shipped(large: Model, small: Model) -> Shipped.Lookup<CueSet> {
        let l = ModelIdentity.of(large), s = ModelIdentity.of(small)
        guard let found = Shipped.best(Shipped.cues, model: l, partner: s) else {
            let known = Shipped.cues.compactMap { c in c.primary.map { "\($0.label) with \(c.partner?.label ?? "?")" } }
            return .none(reason: "no shipped cue file was calibrated with the large model \(l.summary) (they are for: \(known.joined(separator: "; ")))")
        }
        guard let smallLikeness = found.partner, smallLikeness >= .sameBase, let recordedSmall = found.candidate.partner else {
            let why = found.candidate.partner.map { Shipped.difference("small", s, $0, likeness: .other) } ?? "it records no small model"
            return .none(reason: "the shipped cue file \(found.candidate.name) fits this large model, but \(why)")
        }
        var warnings: [String] = []
        if found.likeness == .sameBase {
            warnings.append("using the shipped cue file \(found.candidate.name): "
                            + Shipped.difference("large", l, found.candidate.primary!, likeness: .sameBase))
        }
        if smallLikeness == .sameBase {
            warnings.append("using the shipped cue file \(found.candidate.name): "
                            + Shipped.difference("small", s, recordedSmall, likeness: .sameBase))
        }
        if !warnings.isEmpty {
            warnings[warnings.count - 1] += ". A cue file calibrated for these files may fit better: `relay calibrate -m LARGE -md SMALL --out cues.json`, then --cues cues.json"
        }
        return .found(found.candidate.file, name: found.candidate.name, warnings: warnings)
    }

    /// The cues a RelayGen mode runs with: `given` (--cues), else the shipped file for the pair
    /// (its warnings on standard error); none is `ModeError.missingCues` with the reason.
    public static func forMode(_ mode: String, given: CueSet?, large: Model?, small: Model) throws -> CueSet {
        if let given { return given }
        guard let large else {
            throw ModeError.missingCues(mode: mode, reason: "the large model is remote (--large-url), so no shipped cue file can be matched to it")
        }
        let lookup = shipped(large: large, small: small)
        Shipped.report(lookup.warnings)
        guard let set = lookup.file else { throw ModeError.missingCues(mode: mode, reason: lookup.reason ?? "") }
        return set
    }
}

extension RelayHead {
    /// The shipped call head for a small model: its small model must be this one (the same
    /// weights, or with a warning the same base), as the head reads its hidden states. The large
    /// model only shaped its training labels: a different one (or a remote one, nil) still gets the
    /// head, with a warning when it is known to differ.
    public static func shipped(small: Model, large: Model?) -> Shipped.Lookup<RelayHead> {
        let s = ModelIdentity.of(small), l = large.map(ModelIdentity.of)
        guard let found = Shipped.best(Shipped.heads, model: s, partner: l) else {
            let known = Shipped.heads.compactMap { $0.primary?.label }
            return .none(reason: "no call head ships for the small model \(s.summary) (heads ship for: \(known.joined(separator: "; "))). "
                         + "relayllm runs with only the <call> tags the model writes itself; train a head with "
                         + "`relay train-relay -m LARGE -md SMALL --task gsm8k --offset 1000 --out head.json`, then --relay-head head.json")
        }
        var warnings: [String] = []
        if found.likeness == .sameBase {
            warnings.append("using the shipped call head \(found.candidate.name): "
                            + Shipped.difference("small", s, found.candidate.primary!, likeness: .sameBase))
        }
        if let l, let recorded = found.candidate.partner, let likeness = found.partner, likeness < .same {
            warnings.append("the shipped call head \(found.candidate.name) was trained calling another large model: "
                            + Shipped.difference("large", l, recorded, likeness: likeness))
        }
        if !warnings.isEmpty {
            warnings[warnings.count - 1] += ". A head trained for these models may call better: `relay train-relay -m LARGE -md SMALL --out head.json`, then --relay-head head.json"
        }
        return .found(found.candidate.file, name: found.candidate.name, warnings: warnings)
    }

    /// The shipped head for a small model, if one fits (how it differs, or why none fits, on standard error).
    public static func shipped(for small: Model, large: Model? = nil) throws -> RelayHead? {
        let lookup = shipped(small: small, large: large)
        Shipped.report(lookup.warnings + [lookup.reason].compactMap { $0 })
        guard let head = lookup.file else { return nil }
        guard head.dim == small.config.dim else {
            throw HeadError.mismatch(lookupName(lookup), detail: "hidden size \(head.dim), the small model's is \(small.config.dim)")
        }
        return head
    }

    /// The shipped head's file name and the SHA-256 of what it computes, for pinning it in an eval
    /// configuration: the file as `write` gives it without the model identities, so that recording
    /// them left the pins of runs made before unchanged (a test holds the shipped head to that).
    public static func shippedDigest(for small: Model, large: Model? = nil) -> (name: String, sha256: String)? {
        guard case .found(var head, let name, _) = shipped(small: small, large: large) else { return nil }
        (head.small, head.large) = (nil, nil)
        return (try? head.encoded()).map { (name, ModelIdentity.digest($0)) }
    }

    private static func lookupName(_ lookup: Shipped.Lookup<RelayHead>) -> String {
        if case .found(_, let name, _) = lookup { return name }
        return "shipped head"
    }
}
