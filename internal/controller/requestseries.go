package controller

import (
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// Label names of the per-request series, in the order the exposition sorts them.
var (
	labelName      = "name"
	labelNamespace = "namespace"
	labelProvider  = "provider"
	labelState     = "state"
)

// requestSeries are one request's series in one scrape, made in one allocation. Its label
// pairs are made once and shared by its series, where prometheus.NewConstMetric would make
// them for each series: at 50,000 requests and 250,000 series a scrape holds all of them
// until it is written out, so this keeps the scrape's own memory down (docs/scaling.md).
// The registry and the exposition only read what Write hands them, and the whole is
// garbage once the scrape is written. The label values are copied here, not pointed at in
// the cached object.
type requestSeries struct {
	values [4]string // name, namespace, provider, state
	pairs  [4]dto.LabelPair
	labels [4]*dto.LabelPair // sorted by label name; the state gauge alone has the fourth
	gauges [requestSeriesMax]dto.Gauge
	floats [requestSeriesMax]float64
	series [requestSeriesMax]oneSeries
	n      int
}

// requestSeriesMax is how many series a request has at most.
const requestSeriesMax = 5

// oneSeries is one of a request's series, a prometheus.Metric.
type oneSeries struct {
	desc   *prometheus.Desc
	labels []*dto.LabelPair
	gauge  *dto.Gauge
}

func (s *oneSeries) Desc() *prometheus.Desc { return s.desc }

func (s *oneSeries) Write(out *dto.Metric) error {
	out.Label, out.Gauge = s.labels, s.gauge
	return nil
}

// newRequestSeries holds the labels of a request's series. Label values are not checked
// as prometheus.NewConstMetric checks them (valid UTF-8): the apiserver has validated the
// names, the CRD the provider, and the state is one of TokenStates.
func newRequestSeries(namespace, name, provider, state string) *requestSeries {
	s := &requestSeries{values: [4]string{name, namespace, provider, state}}
	for i, label := range []*string{&labelName, &labelNamespace, &labelProvider, &labelState} {
		s.pairs[i].Name, s.pairs[i].Value = label, &s.values[i]
		s.labels[i] = &s.pairs[i]
	}
	return s
}

// add adds a series of desc; withState gives it the state label.
func (s *requestSeries) add(desc *prometheus.Desc, value float64, withState bool) prometheus.Metric {
	i := s.n
	s.n++
	s.floats[i] = value
	s.gauges[i].Value = &s.floats[i]
	labels := s.labels[:3]
	if withState {
		labels = s.labels[:4]
	}
	s.series[i] = oneSeries{desc: desc, labels: labels, gauge: &s.gauges[i]}
	return &s.series[i]
}
