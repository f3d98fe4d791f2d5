/*
 * fann_driver: times FANN's incremental training (fann_train, one row at a time) for the annfast benchmark.
 *
 * Build (bench/fann.py does this into bench/build/):
 *   gcc -O2 -std=gnu99 fann_driver.c -o fann_driver_float  -lfloatfann  -lm
 *   gcc -O2 -std=gnu99 -DBENCH_FANN_DOUBLE fann_driver.c -o fann_driver_double -ldoublefann -lm
 *
 * Usage: fann_driver FILE
 *   FILE is written by bench/fann.py, all numbers in the host's byte order:
 *     char     magic[8]   "AFBENCH1"
 *     int32    elem_size  sizeof(fann_type) the file was written for (4 or 8)
 *     int32    n_sizes    number of layers including the input layer (>= 2)
 *     int32    sizes[n_sizes]
 *     int64    n_rows
 *     fann_type X[n_rows][sizes[0]], Y[n_rows][sizes[n_sizes-1]]
 *     for each layer k = 1 .. n_sizes-1:  fann_type W[sizes[k]][sizes[k-1]], b[sizes[k]]
 *   The network: hidden layers FANN_SIGMOID with steepness 0.5 (FANN's sigmoid is 1/(1+exp(-2*s*x)), so this is
 *   the standard logistic), output FANN_LINEAR with steepness 1 (FANN's linear is s*x), error function
 *   FANN_ERRORFUNC_LINEAR, learning rate 0.01, momentum 0; the initial weights are the ones in FILE (FANN keeps
 *   each layer's bias as the weight from the bias neuron, the last neuron of the previous layer).
 *
 * Then it reads commands from standard input, one a line, and answers each with one line on standard output:
 *   epoch N     set the initial weights, call fann_train on rows 0 .. N-1 in order; answers the seconds taken by
 *               the fann_train loop alone (CLOCK_MONOTONIC)
 *   dump PATH   write the current weights to PATH as fann_type W, b per layer (the layout above); answers "ok"
 *   quit        exit
 * On start it answers "ready ELEM_SIZE N_ROWS N_CONNECTIONS". Errors go to standard error with exit code 1.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#ifdef BENCH_FANN_DOUBLE
#include <doublefann.h>
#else
#include <floatfann.h>
#endif

static void die(const char *msg)
{
    fprintf(stderr, "fann_driver: %s\n", msg);
    exit(1);
}

static void read_exact(FILE *f, void *dst, size_t size, size_t count)
{
    if (count && fread(dst, size, count, f) != count)
        die("input file is truncated");
}

struct bench {
    unsigned int n_layers;        /* including the input layer */
    unsigned int *sizes;
    long long n_rows;
    fann_type *X, *Y;
    fann_type *init;              /* W, b per layer, as in the file */
    struct fann *ann;
    struct fann_connection *conns;
    unsigned int n_conns;
    size_t *map;                  /* map[c]: index in init of the weight of FANN connection c */
};

/* Offset of layer k's W (k >= 1) in the W, b per layer buffer. */
static size_t layer_offset(const struct bench *b, unsigned int k)
{
    size_t off = 0;
    for (unsigned int j = 1; j < k; j++)
        off += (size_t)b->sizes[j] * (b->sizes[j - 1] + 1);
    return off;
}

/*
 * Index into the W, b per layer buffer of FANN connection c, from the global neuron numbers: layer l's neurons
 * are numbered consecutively, its bias neuron last (every layer has one), layers in order.
 */
static size_t connection_index(const struct bench *b, const struct fann_connection *c)
{
    unsigned int start_prev = 0, start = 0;
    for (unsigned int l = 0; l < b->n_layers; l++) {
        unsigned int end = start + b->sizes[l] + 1;
        if (c->to_neuron >= start && c->to_neuron < end) {
            if (l == 0 || c->to_neuron - start >= b->sizes[l])
                die("connection into an input or bias neuron");
            unsigned int j = c->to_neuron - start, i = c->from_neuron - start_prev, n_in = b->sizes[l - 1];
            if (c->from_neuron < start_prev || i > n_in)
                die("connection from outside the previous layer");
            size_t off = layer_offset(b, l);
            return i == n_in ? off + (size_t)b->sizes[l] * n_in + j : off + (size_t)j * n_in + i;
        }
        start_prev = start;
        start = end;
    }
    die("connection to an unknown neuron");
    return 0;
}

/*
 * fann_get_connection_array lists the connections in the order of ann->weights (FANN's own layout), so the
 * initial weights are copied straight into ann->weights through map. fann_set_weight_array would do the same
 * but searches the whole network for every connection (quadratic: minutes for the large shape); load() checks
 * on small networks that both give the same weights.
 */
static void set_initial_weights(struct bench *b)
{
    for (unsigned int c = 0; c < b->n_conns; c++)
        b->ann->weights[c] = b->init[b->map[c]];
}

static void check_against_set_weight_array(struct bench *b)
{
    for (unsigned int c = 0; c < b->n_conns; c++)
        b->conns[c].weight = b->init[b->map[c]];
    fann_set_weight_array(b->ann, b->conns, b->n_conns);
    for (unsigned int c = 0; c < b->n_conns; c++)
        b->conns[c].weight = (fann_type)0;
    fann_get_connection_array(b->ann, b->conns);
    for (unsigned int c = 0; c < b->n_conns; c++)
        if (b->conns[c].weight != b->init[b->map[c]] || b->ann->weights[c] != b->init[b->map[c]])
            die("fann_set_weight_array disagrees with the connection layout");
}

static void dump_weights(struct bench *b, const char *path)
{
    size_t n = layer_offset(b, b->n_layers);
    fann_type *w = calloc(n, sizeof(fann_type));
    if (!w)
        die("out of memory");
    for (unsigned int c = 0; c < b->n_conns; c++)
        w[b->map[c]] = b->ann->weights[c];
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(w, sizeof(fann_type), n, f) != n || fclose(f) != 0)
        die("cannot write the weights file");
    free(w);
}

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static double run_epoch(struct bench *b, long long n)
{
    unsigned int n_in = b->sizes[0], n_out = b->sizes[b->n_layers - 1];
    set_initial_weights(b);
    double t0 = now_seconds();
    for (long long r = 0; r < n; r++)
        fann_train(b->ann, b->X + (size_t)r * n_in, b->Y + (size_t)r * n_out);
    double t1 = now_seconds();
    return t1 - t0;
}

static void load(struct bench *b, const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        die("cannot open the input file");
    char magic[8];
    int32_t elem_size, n_sizes;
    int64_t n_rows;
    read_exact(f, magic, 1, 8);
    if (memcmp(magic, "AFBENCH1", 8) != 0)
        die("not a benchmark input file");
    read_exact(f, &elem_size, sizeof elem_size, 1);
    if (elem_size != (int32_t)sizeof(fann_type))
        die("the file was written for the other FANN precision");
    read_exact(f, &n_sizes, sizeof n_sizes, 1);
    if (n_sizes < 2 || n_sizes > 64)
        die("bad number of layers");
    b->n_layers = (unsigned int)n_sizes;
    b->sizes = malloc(sizeof(unsigned int) * b->n_layers);
    if (!b->sizes)
        die("out of memory");
    for (unsigned int l = 0; l < b->n_layers; l++) {
        int32_t s;
        read_exact(f, &s, sizeof s, 1);
        if (s < 1)
            die("bad layer size");
        b->sizes[l] = (unsigned int)s;
    }
    read_exact(f, &n_rows, sizeof n_rows, 1);
    if (n_rows < 1)
        die("bad number of rows");
    b->n_rows = n_rows;
    size_t nx = (size_t)n_rows * b->sizes[0], ny = (size_t)n_rows * b->sizes[b->n_layers - 1];
    size_t nw = layer_offset(b, b->n_layers);
    b->X = malloc(sizeof(fann_type) * nx);
    b->Y = malloc(sizeof(fann_type) * ny);
    b->init = malloc(sizeof(fann_type) * nw);
    if (!b->X || !b->Y || !b->init)
        die("out of memory");
    read_exact(f, b->X, sizeof(fann_type), nx);
    read_exact(f, b->Y, sizeof(fann_type), ny);
    read_exact(f, b->init, sizeof(fann_type), nw);
    fclose(f);

    b->ann = fann_create_standard_array(b->n_layers, b->sizes);
    if (!b->ann)
        die("fann_create_standard_array failed");
    fann_set_activation_function_hidden(b->ann, FANN_SIGMOID);
    fann_set_activation_steepness_hidden(b->ann, (fann_type)0.5);
    fann_set_activation_function_output(b->ann, FANN_LINEAR);
    fann_set_activation_steepness_output(b->ann, (fann_type)1.0);
    fann_set_train_error_function(b->ann, FANN_ERRORFUNC_LINEAR);
    fann_set_training_algorithm(b->ann, FANN_TRAIN_INCREMENTAL);
    fann_set_learning_rate(b->ann, 0.01f);
    fann_set_learning_momentum(b->ann, 0.0f);
    b->n_conns = fann_get_total_connections(b->ann);
    if (b->n_conns != nw)
        die("FANN's network has a different number of connections than the file's weights");
    b->conns = malloc(sizeof(struct fann_connection) * b->n_conns);
    if (!b->conns)
        die("out of memory");
    b->map = malloc(sizeof(size_t) * b->n_conns);
    if (!b->map)
        die("out of memory");
    fann_get_connection_array(b->ann, b->conns);
    for (unsigned int c = 0; c < b->n_conns; c++)
        b->map[c] = connection_index(b, &b->conns[c]);
    if (b->n_conns <= 50000)
        check_against_set_weight_array(b);
    set_initial_weights(b);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s FILE   (then commands on standard input: epoch N | dump PATH | quit)\n", argv[0]);
        return 2;
    }
    struct bench b;
    memset(&b, 0, sizeof b);
    load(&b, argv[1]);
    printf("ready %d %lld %u\n", (int)sizeof(fann_type), b.n_rows, b.n_conns);
    fflush(stdout);

    char line[4096];
    while (fgets(line, sizeof line, stdin)) {
        line[strcspn(line, "\r\n")] = '\0';
        if (strncmp(line, "epoch ", 6) == 0) {
            long long n = atoll(line + 6);
            if (n < 1 || n > b.n_rows)
                die("epoch: row count out of range");
            printf("%.9f\n", run_epoch(&b, n));
        } else if (strncmp(line, "dump ", 5) == 0) {
            dump_weights(&b, line + 5);
            printf("ok\n");
        } else if (strcmp(line, "quit") == 0) {
            break;
        } else {
            die("unknown command");
        }
        fflush(stdout);
    }
    fann_destroy(b.ann);
    free(b.map);
    free(b.conns);
    free(b.init);
    free(b.Y);
    free(b.X);
    free(b.sizes);
    return 0;
}
