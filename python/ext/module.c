/*
 * python/ext/module.c: registers the shmkit._shmkit module. Each file adds
 * its own types and functions; this one only calls them, in layer order
 * (base.h describes the layering).
 */
#include "data.h"

static struct PyModuleDef module_def = {
	PyModuleDef_HEAD_INIT,
	.m_name = "shmkit._shmkit",
	.m_doc = "The C core of the shmkit Python module. Use the shmkit package, not this.",
	.m_size = -1,
};

PyMODINIT_FUNC PyInit__shmkit(void)
{
	PyObject *m = PyModule_Create(&module_def);
	if (!m)
		return NULL;
	if (skpy_base_init(m) || skpy_sync_init(m) || skpy_data_init(m) || skpy_bits_init(m) || skpy_value_init(m) ||
	    skpy_queue_init(m)) {
		Py_DECREF(m);
		return NULL;
	}
	return m;
}
