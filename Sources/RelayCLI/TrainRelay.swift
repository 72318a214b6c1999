import ArgumentParser
import Assets
import Eval
import Progress
import Relay
import Training

extension RelayCommand {
    struct TrainRelay: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "train-relay",
            abstract: "Train RelayLLM's call head on the frozen small model: warm-up, then GRPO.",
            discussion: """
            Problems are first sorted by sampling the small model alone (--k samples) and the large model alone \
            (solvable, teacher-dependent, unsolvable; cached in OUT.problems.json). Warm-up labels positions where the \
            large model's help leads to a correct answer; GRPO samples --group-size rollouts per problem and pushes up \
            the group-relative advantage of the head's decisions. Train on problems disjoint from every evaluation set: \
            the default is GSM8K test problems from --offset 1000 on, while evaluations use the first ones.
            """)

        @OptionGroup var model: ModelOptions

        @Option(help: "gsm8k, math500, math-train, or a JSONL file of {\"id\",\"question\",\"answer\"}.")
        var task = "gsm8k"
        @Option(help: "Skip the first K problems (keep evaluation problems out).") var offset = 1000
        @Option(help: "Problems to train on.") var limit = 16
        @Option(help: "warmup, grpo or both.") var stage = HeadTraining.Stage.both
        @Option(help: "Head file to write (JSON); an HTML report is written beside it.") var out: String
        @Option(help: "Start from this head (e.g. a warm-up head for --stage grpo).") var initial: String?
        @Option(help: "Small-model samples per problem when sorting.") var k = 4
        @Option(name: .customLong("group-size"), help: "Rollouts per problem in a GRPO group.") var groupSize = 4
        @Option(help: "Problems per GRPO step.") var batch = 2
        @Option(help: "GRPO passes over the problems.") var epochs = 1
        @Option(help: "GRPO learning rate (Adam).") var lr: Float = 0.01
        @Option(name: .customLong("warmup-lr"), help: "Warm-up learning rate (Adam).") var warmupLR: Float = 0.02
        @Option(name: .customLong("call-rate"), help: "Largest share of positions where the warm-up head calls at inference.") var callRate: Float = 0.005
        @Option(help: "Positions probed per wrong warm-up rollout: the answer's first, then the most decisive disagreements (0: the first --unprobed disagreements are positives, unprobed).") var probes = 2
        @Option(name: .customLong("probe-lengths"), help: "Call lengths tried at a probed position, shortest first (comma separated); a new head chooses among these and 4, 8, 16, 32.")
        var probeLengths = "8,32"
        @Option(help: "With --probes 0: decisive disagreements per wrong rollout labelled as calls.") var unprobed = 3
        @Option(help: "Least large-model margin p(its token) − p(small token) for a disagreement to be decisive.") var decisive: Float = 0.3
        @Option(help: "Floor rate of calls in GRPO rollouts (exploration).") var explore: Float = 0.003
        @Option(help: "visible: the small model reads the tags the head writes (the paper's protocol); hidden: they stay out of its context (a frozen model never saw them). Stored in the head, which runs that way.")
        var tags = TagVisibility.hidden
        @Option(name: .customLong("max-tokens"), help: "Most tokens per rollout.") var maxTokens = 384
        @Option(name: .customLong("temp"), help: "Sampling temperature of rollouts.") var temperature: Float = 0.7
        @Option(help: "Seed of sampling and of the head's decisions.") var seed: UInt64 = 0

        func validate() throws {
            guard limit > 0, k > 0, groupSize > 1, batch > 0, epochs > 0 else {
                throw ValidationError("--limit, --k, --batch and --epochs must be positive and --group-size at least 2")
            }
            guard lr > 0, warmupLR > 0, (0...1).contains(callRate) else { throw ValidationError("learning rates must be positive and --call-rate in 0...1") }
            guard lengths != nil else { throw ValidationError("--probe-lengths '\(probeLengths)': expected positive numbers, comma separated, such as 8,32") }
        }

        /// --probe-lengths as numbers, sorted; nil when malformed.
        var lengths: [Int]? { positiveIntegers(probeLengths)?.sorted() }

        func run() throws {
            let models = try model.pair(needs: [.largeLogits, .small], for: "relay train-relay")
            let template = try model.template(for: models.small!)
            let taskSet = try TaskLoader.load(task, dataDirectory: AssetStore().dataDir)
            try validating {
                try HeadTraining.run(large: models.large!, small: models.small!, task: taskSet, template: template, settings: settings, progress: ProgressBar())
            }
        }

        /// The flags as Training's settings.
        var settings: HeadTraining.Settings {
            var s = HeadTraining.Settings(largeName: model.model, smallName: model.draftModel ?? "", task: task, out: out)
            (s.offset, s.limit, s.stage, s.initial, s.batch, s.epochs, s.contextSize) = (offset, limit, stage, initial, batch, epochs, model.ctxSize)
            (s.trainer.maxTokens, s.trainer.temperature, s.trainer.k, s.trainer.seed) = (maxTokens, temperature, k, seed)
            // probeLengths: checked in validate()
            (s.trainer.probes, s.trainer.probeLengths, s.trainer.unprobed, s.trainer.decisive) = (probes, lengths!, unprobed, decisive)
            (s.trainer.explore, s.trainer.tags, s.trainer.callRate, s.trainer.groupSize) = (explore, tags, callRate, groupSize)
            (s.trainer.warmupLR, s.trainer.lr) = (warmupLR, lr)
            return s
        }
    }
}

extension HeadTraining.Stage: ExpressibleByArgument {}
extension TagVisibility: ExpressibleByArgument {}
