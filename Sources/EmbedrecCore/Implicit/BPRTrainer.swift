/// Bayesian personalised ranking (Rendle et al. 2009): SGD on ln σ(s_ui − s_uj) over triples of
/// a user, an item the user interacted with, and an item the user did not, with the score
/// s_ui = x_u · y_i + b_i (an item bias, as the `implicit` library's extra factor column).
///
/// An epoch draws as many triples as there are interactions: the (user, positive) pair
/// uniformly from the interactions, the negative uniformly from the catalogue, drawn again
/// (up to `maxNegativeDraws` times) while the user has interacted with it. Threads run
/// disjoint ranges of draws without locks (Hogwild, as the SGD trainer); each thread's random
/// stream depends on the seed, the epoch and its chunk only, so one thread gives identical runs.
public final class BPRTrainer: Trainer {
    public let model: MFModel
    public let data: RatingSet
    public var nUsers: Int { model.config.nUsers }
    public let options: ImplicitOptions
    public let cancel = CancelFlag()
    public let progress = EpochProgress()
    public var epochsDone = 0
    let byUser: InteractionRows
    static let maxNegativeDraws = 64

    init(model: MFModel, data: RatingSet, options: ImplicitOptions) {
        self.model = model
        self.data = data
        self.options = options
        byUser = InteractionRows(rows: data.users.base, columns: data.items.base, weights: data.ratings.base,
                                 count: data.count, nRows: model.config.nUsers, nColumns: model.config.nItems)
    }

    public func runEpoch() throws -> EpochStats {
        try model.useGuard.withWriting {
            let start = monotonicSeconds()
            let n = data.count, k = model.k, nItems = model.config.nItems
            // Each thread takes at least 10,000 triples: two threads already paid on ml-latest-small's
            // 48,600 positives (8.8 ms an epoch against 15 ms on one).
            let threads = resolveThreads(options.threads, work: n, minPerThread: 10_000)
            let partial = Buffer<Double>(repeating: 0, count: 2 * threads)
            let lr = options.learningRate, reg = options.regularization
            let seed = options.seed ^ (UInt64(epochsDone + 1) &* 0x9E37_79B9_7F4A_7C15)
            let cancel = self.cancel, progress = self.progress, rows = byUser
            progress.start(total: n)
            let ptrs = UncheckedSendable((model.userFactors.base, model.itemFactors.base, model.itemBias.base,
                                          data.users.base, data.items.base, partial.base))
            parallelChunks(count: n, chunks: threads) { c, range in
                let (X, Y, b, us, its, out) = ptrs.value
                var rng = Xoshiro256(seed: seed ^ (UInt64(c) &* 0xD1B5_4A32_D192_ED03))
                var lossSum = 0.0, done = 0, reportedDone = 0, reportedLoss = 0.0
                /// The next triple: (user, positive, negative), the negative -1 when there is
                /// none (the user has every item, or no draw found one).
                func draw() -> (Int, Int, Int) {
                    let r = rng.nextIndex(below: n)
                    let u = Int(us[r]), i = Int(its[r])
                    if rows.length(of: u) >= nItems { return (u, i, -1) }  // no item left to be a negative
                    var j = Int32(rng.nextIndex(below: nItems))
                    var draws = 1
                    while rows.contains(row: u, column: j) && draws < BPRTrainer.maxNegativeDraws {
                        j = Int32(rng.nextIndex(below: nItems))
                        draws += 1
                    }
                    return (u, i, rows.contains(row: u, column: j) ? -1 : Int(j))
                }
                // Each triple is drawn one step ahead and its three rows prefetched while the
                // current one trains: the draws come in the same order, so do the results.
                var next = range.isEmpty ? (0, 0, -1) : draw()
                for step in range {
                    if (step - range.lowerBound) % 8192 == 0 {
                        if cancel.isSet { break }
                        progress.add(done - reportedDone, loss: lossSum - reportedLoss)
                        reportedDone = done
                        reportedLoss = lossSum
                    }
                    let (u, i, negative) = next
                    if step &+ 1 < range.upperBound {
                        next = draw()
                        if next.2 >= 0 {
                            Kernels.prefetch(X + next.0 * k, k)
                            Kernels.prefetch(Y + next.1 * k, k)
                            Kernels.prefetch(Y + next.2 * k, k)
                        }
                    }
                    if negative < 0 { continue }
                    let j = negative
                    let x = X + u * k, yi = Y + i * k, yj = Y + j * k
                    let diff = b[i] - b[j] + Kernels.dot(x, yi, k) - Kernels.dot(x, yj, k)
                    // d/d diff of ln σ(diff) is σ(−diff); the loss is −ln σ(diff) = ln(1 + e^−diff).
                    let z = sigmoid(-diff)
                    // −ln σ(diff) = −ln(1 − z): from z while it is small, else from diff (stable).
                    lossSum += Double(z < 0.5 ? -_log1pf(-z) : -diff + _log1pf(_expf(diff)))
                    done += 1
                    BPRTrainer.step(x, yi, yj, k, z: z, lr: lr, reg: reg)
                    b[i] += lr * (z - reg * b[i])
                    b[j] += lr * (-z - reg * b[j])
                }
                progress.add(done - reportedDone, loss: lossSum - reportedLoss)
                out[2 * c] = lossSum
                out[2 * c + 1] = Double(done)
            }
            if cancel.isSet { throw CoreError(.cancelled, "training was interrupted") }
            var loss = 0.0, count = 0.0
            for c in 0..<threads { loss += partial[2 * c]; count += partial[2 * c + 1] }
            epochsDone += 1
            return EpochStats(loss: loss / max(count, 1), mae: 0, seconds: monotonicSeconds() - start)
        }
    }

    /// One triple's update, every entry from its old values: x += lr (z (y_i − y_j) − reg x),
    /// y_i += lr (z x − reg y_i), y_j += lr (−z x − reg y_j), with z = σ(−(s_ui − s_uj)).
    @inline(__always)
    static func step(_ x: UnsafeMutablePointer<Float>, _ yi: UnsafeMutablePointer<Float>, _ yj: UnsafeMutablePointer<Float>,
                     _ k: Int, z: Float, lr: Float, reg: Float) {
        let vz = SIMD8<Float>(repeating: z), vlr = SIMD8<Float>(repeating: lr), vreg = SIMD8<Float>(repeating: reg)
        var a = 0
        while a &+ 8 <= k {
            let xa = Kernels.load8(x + a), pa = Kernels.load8(yi + a), na = Kernels.load8(yj + a)
            Kernels.store8(xa + vlr * (vz * (pa - na) - vreg * xa), x + a)
            Kernels.store8(pa + vlr * (vz * xa - vreg * pa), yi + a)
            Kernels.store8(na - vlr * (vz * xa + vreg * na), yj + a)
            a &+= 8
        }
        while a < k {
            let xa = x[a], pa = yi[a], na = yj[a]
            x[a] = xa + lr * (z * (pa - na) - reg * xa)
            yi[a] = pa + lr * (z * xa - reg * pa)
            yj[a] = na - lr * (z * xa + reg * na)
            a &+= 1
        }
    }
}
