import Dispatch

public enum Loss: Int32 {
    case mse = 0
    case mae = 1
    /// Binary cross-entropy on the output taken as a logit (prediction = sigmoid(output)).
    case bce = 2
}

/// Mini-batch training of a `Network` with Adam (lazy, row-wise for embeddings) or SGD.
///
/// A batch is cut into a fixed number of chunks that depends only on the batch size; chunks run
/// in parallel, each with its own gradient buffers, and are added up in chunk order. The result
/// is therefore the same for any thread count. Dropout masks come from a generator seeded by
/// (seed, step, position), for the same reason.
///
/// With `negatives > 0` (implicit data, BCE) every training pair is a positive, and each epoch
/// draws that many negatives per positive uniformly from the items the user has not interacted
/// with.
public final class NetworkTrainer: Trainer {
    public let network: Network
    public let data: RatingSet
    public var nUsers: Int { network.nUsers }
    let options: TrainOptions
    let loss: Loss
    let negatives: Int
    public let cancel = CancelFlag()
    public let progress = EpochProgress()
    public private(set) var epochsDone = 0
    private var step = 0
    private let totalSteps: Int
    private let batch: Int
    private let chunkCount: Int
    private let chunks: [ChunkGradients]
    /// Per thread of the team and embedding node: the merged gradients of the rows that thread
    /// owns (row % team.size == thread).
    private let merged: [[SparseRows?]]
    /// Runs each batch's chunks and optimiser step.
    private let team: WorkerTeam
    private let moments: [(m: Buffer<Float>, v: Buffer<Float>)?]
    private let biasMoments: [(m: Buffer<Float>, v: Buffer<Float>)?]
    private var rng: Xoshiro256
    /// When set, only user-side embedding rows from this row on are updated; every other
    /// parameter stays as it is (folding new users into a trained network).
    public var firstTrainableUser: Int? = nil
    /// Positives per user, sorted (CSR), for rejecting sampled negatives.
    private let seenIndptr: Buffer<Int>?
    private let seenItems: Buffer<Int32>?
    /// The epoch's examples (positives and sampled negatives), shuffled. Without negatives this
    /// is `data` itself, reshuffled in place each epoch: no second copy of the ratings.
    private let epoch: RatingSet

    public init(network: Network, data: RatingSet, loss: Loss, negatives: Int, options: TrainOptions) throws {
        try options.validate()
        guard data.count > 0 else { throw CoreError.invalid("there are no training ratings") }
        guard (0...100).contains(negatives) else { throw CoreError.invalid("negatives must be in 0...100, got \(negatives)") }
        guard negatives == 0 || loss == .bce else { throw CoreError.invalid("negative sampling needs the bce loss") }
        if loss == .bce && negatives == 0 {
            for r in 0..<data.count where !(0...1).contains(data.ratings[r]) {
                throw CoreError.invalid("with the bce loss, targets must be in [0, 1]; got \(data.ratings[r]) at position \(r)")
            }
        }
        guard data.users.buffer.allSatisfy({ Int($0) < network.nUsers }), data.items.buffer.allSatisfy({ Int($0) < network.nItems }) else {
            throw CoreError.invalid("training pairs refer to rows beyond the network's tables")
        }
        let examples = try MemoryBudget.product([data.count, 1 + negatives], what: "training examples")
        guard examples <= Int(Int32.max) else { throw CoreError.invalid("\(examples) examples per epoch is more than supported") }
        try MemoryBudget.check(bytes: try MemoryBudget.product([examples, 12], what: "training examples"), what: "the epoch's examples")
        self.network = network
        self.data = data
        self.options = options
        self.loss = loss
        self.negatives = negatives
        let batch = min(options.batchSize, examples)
        let chunkCount = max(1, min(8, batch / 64))
        self.batch = batch
        self.chunkCount = chunkCount
        totalSteps = options.epochs * ((examples + batch - 1) / batch)
        let capacity = (batch + chunkCount - 1) / chunkCount
        chunks = (0..<chunkCount).map { _ in ChunkGradients(network: network, capacity: capacity, weightDecay: options.weightDecay) }
        let updateThreads = options.threads == 1 ? 1 : min(8, options.threads <= 0 ? activeProcessorCount() : options.threads)
        team = WorkerTeam(size: updateThreads)
        merged = (0..<updateThreads).map { _ in
            network.nodes.map { n in
                n.kind == .embedding ? SparseRows(rows: n.side == 0 ? network.nUsers : network.nItems, width: n.units, capacity: batch) : nil
            }
        }
        moments = network.weights.map { w in w.map { (Buffer<Float>(repeating: 0, count: $0.count), Buffer<Float>(repeating: 0, count: $0.count)) } }
        biasMoments = network.biases.map { b in b.map { (Buffer<Float>(repeating: 0, count: $0.count), Buffer<Float>(repeating: 0, count: $0.count)) } }
        rng = Xoshiro256(seed: options.seed ^ 0x4E45_5457)
        epoch = negatives > 0 ? RatingSet(zeros: examples) : data
        if negatives > 0 {
            // CSR of each user's positives, sorted, for membership tests by binary search.
            let indptr = Buffer<Int>(repeating: 0, count: network.nUsers + 1)
            for r in 0..<data.count { indptr[Int(data.users[r]) + 1] += 1 }
            for u in 0..<network.nUsers { indptr[u + 1] += indptr[u] }
            let items = Buffer<Int32>(repeating: 0, count: data.count)
            var fill = Array(indptr.buffer.prefix(network.nUsers))
            for r in 0..<data.count {
                let u = Int(data.users[r])
                items[fill[u]] = data.items[r]
                fill[u] += 1
            }
            for u in 0..<network.nUsers {
                var userItems = UnsafeMutableBufferPointer(start: items.base + indptr[u], count: indptr[u + 1] - indptr[u])
                userItems.sort()
            }
            seenIndptr = indptr
            seenItems = items
        } else {
            seenIndptr = nil
            seenItems = nil
        }
        try initialiseOutputBias()
    }

    /// Starts the output near the mean target, as a constant model would predict.
    private func initialiseOutputBias() throws {
        guard !network.initialisedFromData, let (node, squash) = network.outputDense else { return }
        var mean = negatives > 0 ? 1.0 / Double(1 + negatives) : data.mean
        var value: Double
        if loss == .bce {
            mean = min(max(mean, 1e-3), 1 - 1e-3)
            value = _log(mean / (1 - mean))
        } else if let (lo, hi) = squash {
            let t = min(max((mean - lo) / (hi - lo), 1e-3), 1 - 1e-3)
            value = _log(t / (1 - t))
        } else {
            value = mean
        }
        try network.useGuard.withWriting {
            network.biases[node]!.base.update(repeating: Float(value), count: network.biases[node]!.count)
            network.initialisedFromData = true
        }
    }

    private func isPositive(user: Int, item: Int32) -> Bool {
        var lo = seenIndptr![user], hi = seenIndptr![user + 1]
        while lo < hi {
            let mid = (lo + hi) / 2
            let v = seenItems![mid]
            if v == item { return true }
            if v < item { lo = mid + 1 } else { hi = mid }
        }
        return false
    }

    /// Fills the epoch's examples (positives plus fresh negatives) and shuffles them.
    private func prepareEpoch() -> Int {
        guard negatives > 0 else {
            epoch.shuffle(using: &rng)
            return data.count
        }
        let us = epoch.users, its = epoch.items, ts = epoch.ratings
        var n = 0
        for r in 0..<data.count {
            let u = Int(data.users[r])
            us[n] = data.users[r]; its[n] = data.items[r]; ts[n] = 1
            n += 1
            for _ in 0..<negatives {
                var item = Int32(rng.nextIndex(below: network.nItems))
                var tries = 0
                while isPositive(user: u, item: item) && tries < 50 {
                    item = Int32(rng.nextIndex(below: network.nItems))
                    tries += 1
                }
                us[n] = Int32(u); its[n] = item; ts[n] = 0
                n += 1
            }
        }
        epoch.shuffle(using: &rng)
        return n
    }

    public func runEpoch() throws -> EpochStats {
        try network.useGuard.withWriting { try runEpochLocked() }
    }

    private func runEpochLocked() throws -> EpochStats {
        let start = monotonicSeconds()
        let n = prepareEpoch()
        progress.start(total: n)
        var lossSum = 0.0, absSum = 0.0
        var lo = 0
        while lo < n {
            if cancel.isSet { throw CoreError(.cancelled, "training was interrupted") }
            let hi = min(lo + batch, n)
            let (l, a) = runBatch(lo..<hi)
            lossSum += l; absSum += a
            progress.add(hi - lo, loss: l)
            lo = hi
        }
        epochsDone += 1
        return EpochStats(loss: lossSum / Double(n), mae: absSum / Double(n), seconds: monotonicSeconds() - start)
    }

    /// Forward and backward over one batch in chunks, then one optimiser step.
    private func runBatch(_ range: Range<Int>) -> (Double, Double) {
        let size = range.count
        let scale = 1 / Float(size)
        let chunksUsed = min(chunkCount, size)
        var partial = [Double](repeating: 0, count: 2 * chunksUsed)
        let stepSeed = options.seed &+ UInt64(step) &* 0x9E37_79B9_7F4A_7C15
        let net = network, lossKind = loss
        let buffers = UncheckedSendable((epoch.users.base, epoch.items.base, epoch.ratings.base))
        partial.withUnsafeMutableBufferPointer { partialBuffer in
            let out = UncheckedSendable(partialBuffer.baseAddress!)
            let body = { (c: Int) in
                let (us, its, ts) = buffers.value
                let sink = self.chunks[c]
                sink.begin()
                sink.scale = scale
                let act = sink.act, mask = sink.mask, grad = sink.grad
                let lo = range.lowerBound + size * c / chunksUsed, hi = range.lowerBound + size * (c + 1) / chunksUsed
                var lossSum = 0.0, absSum = 0.0
                for r in lo..<hi {
                    if r + 4 < hi { net.prefetchRows(user: Int(us[r + 4]), item: Int(its[r + 4])) }
                    var dropoutRNG: Xoshiro256? = Xoshiro256(seed: stepSeed &+ UInt64(r))
                    let u = Int(us[r]), i = Int(its[r]), t = ts[r]
                    let y = net.forward(user: u, item: i, act: act.base, mask: mask.base, rng: &dropoutRNG)
                    let g: Float
                    switch lossKind {
                    case .mse:
                        let e = y - t
                        lossSum += Double(e * e); absSum += Double(abs(e))
                        g = 2 * e * scale
                    case .mae:
                        let e = y - t
                        lossSum += Double(abs(e)); absSum += Double(abs(e))
                        g = (e > 0 ? 1 : (e < 0 ? -1 : 0)) * scale
                    case .bce:
                        let p = sigmoid(y)
                        let pc = min(max(Double(p), 1e-7), 1 - 1e-7)
                        lossSum += -(Double(t) * _log(pc) + Double(1 - t) * _log(1 - pc))
                        absSum += Double(abs(p - t))
                        g = (p - t) * scale
                    }
                    net.backward(user: u, item: i, gOut: g, act: act.base, mask: mask.base, grad: grad.base, sink: sink)
                }
                out.value[2 * c] = lossSum
                out.value[2 * c + 1] = absSum
            }
            if team.size == 1 || chunksUsed == 1 {
                for c in 0..<chunksUsed { body(c) }
            } else {
                let size = team.size
                team.run { t in
                    for c in stride(from: t, to: chunksUsed, by: size) { body(c) }
                }
            }
        }
        step += 1
        applyGradients(chunksUsed: chunksUsed)
        var l = 0.0, a = 0.0
        for c in 0..<chunksUsed { l += partial[2 * c]; a += partial[2 * c + 1] }
        return (l, a)
    }

    /// The optimiser step, split over the team's threads: each dense node's parameters in
    /// contiguous ranges, embedding rows by owner (row % threads). Each parameter's gradient is
    /// summed over the chunks in chunk order and then stepped on its own, so the result does not
    /// depend on the number of threads.
    private func applyGradients(chunksUsed: Int) {
        let update = BatchUpdate(trainer: self, chunksUsed: chunksUsed)
        let threads = team.size
        team.run { t in update.run(thread: t, of: threads) }
    }

    deinit { team.shutdown() }

    private struct BatchUpdate: @unchecked Sendable {
        let trainer: NetworkTrainer
        let chunksUsed: Int
        let lr, bc1, bc2: Float
        let adam: Bool

        init(trainer: NetworkTrainer, chunksUsed: Int) {
            self.trainer = trainer
            self.chunksUsed = chunksUsed
            let step = trainer.step
            lr = trainer.options.learningRate(step: step - 1, totalSteps: trainer.totalSteps)
            adam = trainer.options.optimizer == .adam
            bc1 = 1 - Float(_pow(Double(AdamTrainer.beta1), Double(step)))
            bc2 = 1 - Float(_pow(Double(AdamTrainer.beta2), Double(step)))
        }

        /// Steps `count` parameters at `p` with moments at `m`, `v` (Adam) by gradient `g`.
        @inline(__always)
        func step(_ p: UnsafeMutablePointer<Float>, _ m: UnsafeMutablePointer<Float>?, _ v: UnsafeMutablePointer<Float>?,
                  _ g: UnsafeMutablePointer<Float>, _ count: Int) {
            if adam {
                AdamTrainer.adamRow(p, m!, v!, g, count, lr, bc1, bc2)
            } else {
                Kernels.axpy(p, g, count, -lr)
            }
        }

        func run(thread t: Int, of threads: Int) {
            let tr = trainer, network = tr.network, chunks = tr.chunks
            let decay = tr.options.weightDecay
            for (j, node) in network.nodes.enumerated() {
                if tr.firstTrainableUser != nil && !(node.kind == .embedding && node.side == 0) { continue }
                switch node.kind {
                case .dense:
                    let W = network.weights[j]!, B = network.biases[j]!
                    let wLo = W.count * t / threads, wHi = W.count * (t + 1) / threads
                    let bLo = B.count * t / threads, bHi = B.count * (t + 1) / threads
                    let (gW, gB) = chunks[0].dense[j]!
                    for c in 1..<max(chunksUsed, 1) {
                        let (w, b) = chunks[c].dense[j]!
                        Kernels.axpy(gW.base + wLo, w.base + wLo, wHi - wLo, 1)
                        Kernels.axpy(gB.base + bLo, b.base + bLo, bHi - bLo, 1)
                    }
                    if decay > 0 {  // decoupled decay of the kernel (AdamW), not the bias
                        let keep = 1 - lr * decay
                        for k in wLo..<wHi { W[k] *= keep }
                    }
                    let mw = tr.moments[j], mb = tr.biasMoments[j]
                    step(W.base + wLo, mw.map { $0.m.base + wLo }, mw.map { $0.v.base + wLo }, gW.base + wLo, wHi - wLo)
                    step(B.base + bLo, mb.map { $0.m.base + bLo }, mb.map { $0.v.base + bLo }, gB.base + bLo, bHi - bLo)
                case .embedding:
                    let total = tr.merged[t][j]!
                    total.begin()
                    let width = node.units
                    for c in 0..<chunksUsed {
                        let part = chunks[c].sparse[j]!
                        for s in 0..<part.count {
                            let row = Int(part.touched[s])
                            if row % threads != t { continue }
                            Kernels.axpy(total.row(row), part.grads.base + s * width, width, 1)
                        }
                    }
                    let table = network.weights[j]!, mv = tr.moments[j]
                    for s in 0..<total.count {
                        if s + 4 < total.count {  // rows at random: fetch a few ahead (as in AdamTrainer)
                            let ahead = Int(total.touched[s + 4]) * width
                            Kernels.prefetch(table.base + ahead, width)
                            if let (m, v) = mv { Kernels.prefetch(m.base + ahead, width); Kernels.prefetch(v.base + ahead, width) }
                        }
                        let row = Int(total.touched[s])
                        if let first = tr.firstTrainableUser, row < first { continue }
                        let p = table.base + row * width
                        step(p, mv.map { $0.m.base + row * width }, mv.map { $0.v.base + row * width },
                             total.grads.base + s * width, width)
                        if node.nonNegative { Kernels.clampNonNegative(p, width) }
                    }
                default:
                    break
                }
            }
        }
    }
}
